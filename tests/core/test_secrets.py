from gpubroker.core.secrets import EnvSecretStore


async def test_env_store_reads_prefixed_variables() -> None:
    store = EnvSecretStore(
        {"GPUBROKER_SECRET_VASTAI_API_KEY": "k1", "GPUBROKER_SECRET_RUNPOD_API_KEY": "k2", "OTHER": "x"}
    )
    credentials = await store.credentials("vastai")
    assert dict(credentials) == {"api_key": "k1"}
    assert dict(await store.credentials("lambda")) == {}
