"""The gateway's materialised view of every provider's offers and health."""
