"""The Adobe Marketo Engage connector: members as leads, loyalty events as custom activities, and
triggered campaigns (emails) with My Tokens. Written only against the connector kit."""
