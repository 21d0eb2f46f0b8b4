"""What signed-in users keep: favourites, price alerts, webhooks and provider integrations."""
