import logging

import pytest

from gpubroker.core.logs import register_secrets
from gpubroker.core.provider import Credentials


def test_registered_secrets_never_reach_a_log_record(caplog: pytest.LogCaptureFixture) -> None:
    register_secrets(["s3cr3t-value-123"])
    log = logging.getLogger("test")
    with caplog.at_level(logging.INFO):
        log.info("calling with key=%s", "s3cr3t-value-123")
        try:
            raise RuntimeError("server echoed s3cr3t-value-123")
        except RuntimeError:
            log.exception("failed")
    assert "s3cr3t-value-123" not in caplog.text
    assert "key=***" in caplog.text


def test_credentials_do_not_print_their_values() -> None:
    credentials = Credentials({"api_key": "abcd-1234"})
    assert "abcd-1234" not in repr(credentials)
    assert "abcd-1234" not in f"{credentials}"
    assert credentials["api_key"] == "abcd-1234"
