"""The Django gateway: merges the providers' offers from the bus, answers queries, streams."""
