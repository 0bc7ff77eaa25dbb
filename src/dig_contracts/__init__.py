"""Contracts shared by the DIG modules: the ES Loyalty event envelope and its per-type schemas,
the detail DIG puts on the bus, the connector manifest, and the card-number rule.

Nothing here talks to AWS or to a provider; every module may import it.
"""
