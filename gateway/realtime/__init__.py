"""Pushing changes to subscribers as they happen: the hub and its SSE stream."""
