"""The Salesforce Marketing Cloud connector: transactional email, journey entry and data extension
rows. Scaffolded by ``dig connector new``."""
