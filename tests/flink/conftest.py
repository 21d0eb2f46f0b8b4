"""The jobs' tests need the real Kafka and the running Flink cluster (``scripts/services up
flink``); every test here is marked ``integration`` and ``flink``."""

from __future__ import annotations

import pytest

from tests.flink.cluster import Flink, flink_cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/flink/" in item.nodeid:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.flink)


@pytest.fixture(scope="session")
def flink() -> Flink:
    return flink_cluster()
