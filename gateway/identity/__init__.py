"""Who is asking and what they may do: tokens, API keys, plans, rate limits and the guard that
applies them to every request."""
