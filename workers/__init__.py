"""The per-provider worker runtime: poll a provider, diff, publish."""
