"""Every route x method (in three spellings, and methods nobody declares) x identity, against a
real gateway process over HTTP: what the server answers is what the route's own declaration
says, for anonymous callers, each plan's API key and a platform service token.

The matrix is generated from the route table (the endpoints' declarations), so a new route is
in it the day it is added; it runs through the real server, the guard and the fast path, not
Django's test client, which skips both.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from gpubroker.gateway.identity.callers import Identity
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.identity.routes import WEBSOCKET, RouteTable
from gpubroker.gateway.realtime.sockets import WEBSOCKETS

BIN = Path(sys.executable).parent
PASSWORD = "matrix password, long enough"
OPERATOR_KEY = "matrix-operator-key"
SPELLINGS = (str.upper, str.lower, lambda method: method[0] + method[1:].lower())
UNDECLARED = ("FOO", "PROPFIND", "TRACE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    """An embedded gateway with a user (and an API key) of every plan, and a platform token."""
    data = tmp_path_factory.mktemp("matrix")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")}
    env |= {
        "GPUBROKER_DATA_DIR": str(data),
        "GPUBROKER_ADMIN_API_KEY": OPERATOR_KEY,
        "GPUBROKER_PLUGINS": "[]",
        "GPUBROKER_ENFORCE_PLANS": "true",  # the plans are what is under test
    }
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    for plan in ("free", "pro", "enterprise", "admin"):
        subprocess.run(
            [BIN / "gpubroker", "users", "create", f"{plan}@matrix.example.com", "--plan", plan],
            input=PASSWORD + "\n", env=env, text=True, check=True, timeout=60, capture_output=True,
        )  # fmt: skip
    platform = subprocess.run(
        [BIN / "gpubroker", "auth", "service-token", "matrix"], env=env, text=True, check=True, capture_output=True
    ).stdout.strip()
    port = free_port()
    process = subprocess.Popen(
        [BIN / "granian", "--interface", "asgi", "--port", str(port), "gpubroker.gateway.asgi:application"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while request(port, "GET", "/health")[0] != 200:
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.2)
        credentials = {"platform": f"Bearer {platform}"}
        for plan in ("free", "pro", "enterprise", "admin"):
            login = {"email": f"{plan}@matrix.example.com", "password": PASSWORD}
            _, body = request(port, "POST", "/api/v2/auth/login", body=login)
            token = json.loads(body)["access_token"]
            _, body = request(port, "POST", "/api/v2/auth/api-keys", body={"name": "m"}, auth=f"Bearer {token}")
            credentials[plan] = json.loads(body)["key"]
        yield port, credentials
    finally:
        process.terminate()
        process.wait(timeout=30)


def request(
    port: int, method: str, path: str, *, body: object = None, auth: str | None = None, address: str = "127.0.0.1"
) -> tuple[int, bytes]:
    """One request from ``address`` (any loopback address: the server sees each as a client)."""
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization" if auth.startswith("Bearer ") else "X-API-Key"] = auth
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(address, 0))
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        answer = connection.getresponse()
        if answer.getheader("content-type", "").startswith("text/event-stream"):
            return answer.status, b""  # a stream that stays open: its status is the answer
        return answer.status, answer.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


IDENTITIES = {
    "anonymous": Identity("anonymous", "ip:x", Plan.ANONYMOUS),
    "free": Identity("apikey", "user:1", Plan.FREE, 1),
    "pro": Identity("apikey", "user:2", Plan.PRO, 2),
    "enterprise": Identity("apikey", "user:3", Plan.ENTERPRISE, 3),
    "admin": Identity("apikey", "user:4", Plan.ADMIN, 4),
    "platform": Identity("platform", "service:matrix", Plan.ADMIN),
}


def concrete(pattern: str) -> str:
    """A path for a route pattern, each parameter given a value of its type."""
    return "/" + re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) == "int" else "x1", pattern)


def test_every_route_method_and_identity_gets_what_its_declaration_says(
    server: tuple[int, dict[str, str]], db: None
) -> None:
    port, credentials = server
    table = RouteTable.from_django({path: consumer.requires for path, consumer in WEBSOCKETS.items()})
    mismatches, checked = [], 0
    for route in table.routes:
        if WEBSOCKET in route.needs:
            continue
        path = concrete(route.pattern)
        for method, requires in route.needs.items():
            assert requires is not None
            for who, identity in IDENTITIES.items():
                refusal = requires.refusal(identity)
                auth = None if who == "anonymous" else credentials[who]
                for spell in SPELLINGS:
                    # anonymous callers each from their own address, so the rate limit stays out of the way
                    address = f"127.0.{checked // 250}.{checked % 250 + 1}"
                    status, body = request(port, spell(method), path, body={}, auth=auth, address=address)
                    checked += 1
                    expected = {refusal.status} if refusal is not None else None
                    allowed = refusal is None and status not in (0, 401, 403, 405) and status < 500
                    if (expected is not None and status not in expected) or (expected is None and not allowed):
                        mismatches.append((spell(method), path, who, status, body[:120]))
        for method in UNDECLARED:
            status, _ = request(port, method, path, auth=credentials["admin"])
            if status != 405:
                mismatches.append((method, path, "admin", status, b"undeclared method"))
    assert checked > 500
    assert mismatches == [], "\n".join(map(str, mismatches))


def test_websocket_routes_take_every_identity_their_declaration_allows(server: tuple[int, dict[str, str]]) -> None:
    port, credentials = server

    async def close_code(query: str) -> int | None:
        url = f"ws://127.0.0.1:{port}/ws/providers/{query}"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as connection:
            first = await connection.receive(timeout=5)
            if first.type == aiohttp.WSMsgType.TEXT:
                assert json.loads(first.data)["type"] == "connection_established"
                return None
            return connection.close_code

    assert asyncio.run(close_code("")) is None  # reading offers: anyone
    assert asyncio.run(close_code("?token=" + credentials["platform"].removeprefix("Bearer "))) is None
    assert asyncio.run(close_code("?token=forged")) == 4401
