"""The Sfmc connector: ES Loyalty events delivered to the provider.

Scaffolded by ``dig connector new``.
"""
