"""The ``dig`` command: the local stack, tokens, connector configuration, audit and replay."""
