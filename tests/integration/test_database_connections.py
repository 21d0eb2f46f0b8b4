"""The gateway's PostgreSQL connections stay within its pool however many requests use them:
each request (and each piece of background work) gives its connection back when it is done."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.conftest import Services
from tests.integration.processes import gateway_process, production_env
from tests.integration.test_identity_cluster import api_key

pytestmark = pytest.mark.integration

POOL = 4
REQUESTS = 400
AT_ONCE = 16


def gateway_pids(port: int) -> set[int]:
    """The process serving on ``port`` and all its descendants (granian's workers)."""
    parents: dict[int, int] = {}
    roots: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid = int(stat.parent.name)
            parents[pid] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        if b"serve" in argv and str(port).encode() in argv:
            roots.add(pid)
    found, grew = set(roots), True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        found |= children
        grew = bool(children)
    return found


def connections(database_url: str, port: int) -> int:
    """Open TCP connections from the gateway's processes to PostgreSQL.

    Counted on the gateway's side: ``pg_stat_activity`` still lists a backend for a moment after
    its client has gone (a CLI that just exited, a connection the pool replaced), which is not a
    connection the gateway holds.
    """
    database_port = urlsplit(database_url).port or 5432
    inodes: set[str] = set()
    for pid in gateway_pids(port):
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and remote_port == database_port and fields[9] in inodes:  # 01: established
                held += 1
    return held


async def drive(url: str, key: str, database_url: str) -> tuple[Counter[int], int]:
    """Hundreds of database-backed requests, several at a time; the most connections seen."""
    outcomes: Counter[int] = Counter()
    most = 0
    paths = ["/api/v2/users/favorites", "/api/v2/auth/api-keys", "/api/v2/alerts", "/api/v2/webhooks"]
    wrong = {"email": "nobody@example.com", "password": "not the right password"}
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(n: int) -> None:
            async with gate:
                if n % 10 == 0:  # a failed sign-in reads the database too
                    answer = await session.post(url + "/api/v2/auth/login", json=wrong, headers={"X-API-Key": ""})
                else:
                    answer = await session.get(url + paths[n % len(paths)])
                async with answer:
                    await answer.read()
                    outcomes[answer.status] += 1

        async def watch() -> None:
            nonlocal most
            while True:
                most = max(most, await asyncio.to_thread(connections, database_url, urlsplit(url).port or 80))
                await asyncio.sleep(0.2)

        watcher = asyncio.create_task(watch())
        await asyncio.gather(*(one(n) for n in range(REQUESTS)))
        watcher.cancel()
    return outcomes, most


def test_connections_stay_within_the_pool_under_hundreds_of_requests(services: Services, tmp_path: Path) -> None:
    env = {**production_env(services, tmp_path), "GPUBROKER_DATABASE_POOL_SIZE": str(POOL)}
    with gateway_process(env) as url:
        key = api_key(env, url, "admin")
        outcomes, most = asyncio.run(drive(url, key, services.database_url))
        # A request that waits longer than the database timeout for a free connection is a
        # documented 503 (a busy machine may see a few); never a 500 or a hang.
        assert sum(outcomes[s] for s in (200, 401, 429, 503)) == REQUESTS, outcomes
        assert outcomes[200] >= REQUESTS * 0.8
        assert most <= POOL, f"{most} connections at once with a pool of {POOL}"
        assert 0 < connections(services.database_url, urlsplit(url).port or 80) <= POOL
