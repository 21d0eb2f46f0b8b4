from pathlib import Path

import pytest

from gpubroker.core.errors import ConfigurationError
from gpubroker.core.settings import load_settings


def test_embedded_defaults_need_no_services(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.embedded
    assert settings.kafka_bootstrap is None
    assert settings.serve_snapshot_when_offline


def test_production_names_every_missing_service(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GPUBROKER_MODE", "production")
    clean_env.setenv("GPUBROKER_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    message = str(error.value)
    for name in ("GPUBROKER_REDIS_URL", "GPUBROKER_DATABASE_URL", "GPUBROKER_VAULT_ADDR", "GPUBROKER_SECRET_KEY"):
        assert name in message
    assert "GPUBROKER_KAFKA_BOOTSTRAP" not in message


def test_production_never_serves_snapshots(clean_env: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MODE": "production",
        "KAFKA_BOOTSTRAP": "k:9092",
        "REDIS_URL": "redis://r",
        "DATABASE_URL": "postgresql://d/db",
        "VAULT_ADDR": "http://v",
        "SECRET_KEY": "s",
    }.items():
        clean_env.setenv(f"GPUBROKER_{name}", value)
    assert not load_settings().serve_snapshot_when_offline


def test_invalid_values_name_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GPUBROKER_PORT", "eighty")
    with pytest.raises(ConfigurationError, match="GPUBROKER_PORT"):
        load_settings()


def test_provider_base_urls_from_json(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GPUBROKER_PROVIDER_BASE_URLS", '{"vastai": "http://127.0.0.1:9000/"}')
    assert load_settings().base_url_for("vastai", "https://console.vast.ai") == "http://127.0.0.1:9000"
    assert load_settings().base_url_for("runpod", "https://api.runpod.io") == "https://api.runpod.io"


def test_a_production_worker_needs_only_kafka_and_vault(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("GPUBROKER_MODE", "production")
    with pytest.raises(ConfigurationError) as error:
        load_settings(process="worker")
    assert "GPUBROKER_KAFKA_BOOTSTRAP, GPUBROKER_VAULT_ADDR for the worker" in str(error.value)
    clean_env.setenv("GPUBROKER_KAFKA_BOOTSTRAP", "k:9092")
    clean_env.setenv("GPUBROKER_VAULT_ADDR", "http://v")
    assert load_settings(process="worker").database_url is None
    with pytest.raises(ConfigurationError, match="GPUBROKER_DATABASE_URL"):
        load_settings()


def test_settings_are_read_from_files_an_agent_writes(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "gpubroker_secret_key").write_text("from-a-file")
    (secrets / "gpubroker_vault_token").write_text("s.token")
    clean_env.setenv("GPUBROKER_SECRETS_DIR", str(secrets))
    clean_env.setenv("GPUBROKER_VAULT_TOKEN", "")
    settings = load_settings()
    assert settings.secret_key == "from-a-file"
    assert settings.vault_token == ""  # the environment wins over a file
    clean_env.delenv("GPUBROKER_VAULT_TOKEN")
    assert load_settings().vault_token == "s.token"


def test_a_missing_secrets_dir_is_named(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("GPUBROKER_SECRETS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigurationError, match=r"GPUBROKER_SECRETS_DIR: .*nowhere is not a directory"):
        load_settings()


def test_a_vault_ca_file_must_exist(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("GPUBROKER_VAULT_CA_CERT", str(tmp_path / "missing-ca.pem"))
    with pytest.raises(ConfigurationError, match="GPUBROKER_VAULT_CA_CERT"):
        load_settings()
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    clean_env.setenv("GPUBROKER_VAULT_CA_CERT", str(tmp_path / "ca.pem"))
    assert load_settings().vault_ca_cert == tmp_path / "ca.pem"
