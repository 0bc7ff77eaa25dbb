"""The Tipalti connector: ES Loyalty events delivered to the provider.

Scaffolded by ``dig connector new``.
"""
