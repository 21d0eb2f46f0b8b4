from pathlib import Path

import orjson
import pytest

from gpubroker.core.rental_messages import RentalCommand, RentalResult
from gpubroker.core.secrets import PLATFORM_CREDENTIALS, EnvSecretStore, credentials_user, user_credentials_ref
from gpubroker.core.vault import LocalKV


async def test_env_store_reads_prefixed_variables() -> None:
    store = EnvSecretStore(
        {"GPUBROKER_SECRET_VASTAI_API_KEY": "k1", "GPUBROKER_SECRET_RUNPOD_API_KEY": "k2", "OTHER": "x"}
    )
    credentials = await store.credentials("vastai")
    assert dict(credentials) == {"api_key": "k1"}
    assert dict(await store.credentials("lambda")) == {}


async def test_env_store_reads_users_own_credentials_from_the_embedded_vault(tmp_path: Path) -> None:
    users = LocalKV(tmp_path)
    await users.write("gpubroker/users/7/providers/vastai", {"api_key": "own"})
    store = EnvSecretStore({"GPUBROKER_SECRET_VASTAI_API_KEY": "platform"}, users=users)
    assert dict(await store.user_credentials("vastai", 7) or {}) == {"api_key": "own"}
    assert await store.user_credentials("vastai", 8) is None
    assert await store.user_credentials("runpod", 7) is None
    assert await EnvSecretStore({}).user_credentials("vastai", 7) is None


def test_credentials_references_name_the_platform_or_a_user_and_nothing_else() -> None:
    assert credentials_user(PLATFORM_CREDENTIALS) is None
    assert credentials_user(user_credentials_ref(42)) == 42
    for wrong in ("", "user:", "user:x", "admin", "user:-1"):
        with pytest.raises(ValueError, match="unknown credentials reference"):
            credentials_user(wrong)


def test_rental_commands_and_results_carry_the_reference_and_refuse_a_wrong_one() -> None:
    command = RentalCommand("c1", "vastai", "instances", credentials=user_credentials_ref(3))
    assert RentalCommand.decode(command.encode()) == command
    result = RentalResult("c1", "vastai", "instances", "ok", credentials=user_credentials_ref(3))
    assert RentalResult.decode(result.encode()).credentials == "user:3"
    legacy = orjson.loads(command.encode())
    del legacy["credentials"]
    assert RentalCommand.decode(orjson.dumps(legacy)).credentials == PLATFORM_CREDENTIALS
    with pytest.raises(ValueError, match="unknown credentials reference 'api_key=s3cret'"):
        RentalCommand.decode(orjson.dumps({**legacy, "credentials": "api_key=s3cret"}))
