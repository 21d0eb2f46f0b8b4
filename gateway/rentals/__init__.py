"""Renting through the broker: rentals' states, the service that moves them, their API, the
feed to subscribers and the reconciler that keeps the database and the providers in step."""
