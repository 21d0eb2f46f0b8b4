"""pytest fixtures for provider plugin authors (loaded automatically once gpubroker is installed).

``replay_server`` starts a ``ReplayServer`` for a plugin's recordings and stops it after the
test::

    def test_my_plugin(replay_server):
        server = replay_server(MyAdapter)
        server.faults.status = 503
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from gpubroker.core.testkit.replay import ReplayServer

if TYPE_CHECKING:  # keep this plugin cheap to load: pytest imports it in every session
    from gpubroker.core.adapter import ProviderAdapter


@pytest.fixture
def replay_server() -> Iterator[Callable[[type[ProviderAdapter]], ReplayServer]]:
    servers: list[ReplayServer] = []

    def start(adapter: type[ProviderAdapter]) -> ReplayServer:
        if adapter.recordings is None:
            raise ValueError(f"{adapter.__name__} has no recordings folder")
        server = ReplayServer(adapter.recordings)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
