"""The conformance kit for plugin authors: a replay server for recorded provider payloads,
fault injection, and pytest fixtures (registered as a pytest plugin)."""
