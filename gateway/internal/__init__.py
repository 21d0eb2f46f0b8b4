"""``/internal/v1``: the API the platform's own components call (the Airflow DAGs), with a
platform service token only (``gpubroker auth service-token NAME``), never a user's token or key."""
