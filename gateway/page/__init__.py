"""The web page at ``/``: a small front end with no dependencies and no build step, served by the
gateway itself, that uses nothing but the public API (the offer list, ranking weights, provider
health, price history and the event stream)."""
