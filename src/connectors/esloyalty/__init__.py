"""The ES Loyalty connector: the return path's last leg, inbound events delivered to ES Loyalty as
signed webhooks (Standard Webhooks). Scaffolded by ``dig connector new``."""
