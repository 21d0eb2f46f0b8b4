"""What the DAGs in ``dags/`` do, kept apart from the DAG files so it can be tested without
Airflow: the gateway's internal API client, the webhook delivery service, the plugin-health
checks and the FX reference-rate fetcher. Uses ``gpubroker.core``, never Django or
``gpubroker.gateway`` (Airflow's environment has neither)."""
