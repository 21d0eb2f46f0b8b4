"""``gpubroker offers|rank|watch|providers|history|gpus`` as a person runs them, against a running
embedded gateway (``replayed_gateway``: plans enforced, Vast.ai live from a replay server, Lambda
degraded on its snapshot)."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import select
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from gpubroker.cli.filters import FILTERS, WEIGHTS
from gpubroker.cli.render import price
from tests.embedded import BIN, Embedded, change_price, clean_environment, copy_recordings, replayed_gateway

WIDE = {"COLUMNS": "200", "LINES": "60", "TERM": "xterm-256color"}


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_recordings("gpubroker_vastai", tmp_path_factory.mktemp("vastai") / "recordings")


@pytest.fixture(scope="module")
def gateway(recordings: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedded]:
    with replayed_gateway(recordings, tmp_path_factory.mktemp("browse") / "data") as running:
        yield running


@pytest.fixture(scope="module")
def keys(gateway: Embedded) -> dict[str, str]:
    return {plan: gateway.user(f"{plan}@browse.example.com", plan)[1] for plan in ("free", "pro")}


def gpubroker(gateway: Embedded, *args: str, key: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = clean_environment(GPUBROKER_URL=gateway.url, **WIDE, **env)
    if key is not None:
        environment["GPUBROKER_API_KEY"] = key
    return subprocess.run(
        [BIN / "gpubroker", *args], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def test_every_list_parameter_is_an_option(gateway: Embedded) -> None:
    document = gateway.get_json("/api/v2/openapi.json")
    assert isinstance(document, dict)
    listed = {p["name"] for p in document["paths"]["/api/v2/providers"]["get"]["parameters"] if p["in"] == "query"}
    options = {item.parameter for item in FILTERS + WEIGHTS}
    assert listed - {"sort", "limit", "cursor"} == options | {"gpu"}  # gpu is the GPU[:COUNT] argument


def test_offers_table_with_filters_and_the_degraded_footer(gateway: Embedded, keys: dict[str, str]) -> None:
    shown = gpubroker(gateway, "offers", "H100", "--max-price", "2.5", "--region", "us-", key=keys["pro"])
    assert shown.returncode == 0, shown.stderr
    head, *rows = [line for line in shown.stdout.splitlines() if "│" in line or "┃" in line]
    for title in ("$/h", "$/GPU/h", "GPU", "GPUs", "GB/GPU", "vCPUs", "RAM GB", "region", "availability", "spot"):
        assert title in head
    assert "provider" in head and "age" in head
    assert rows and all(row.split("│")[2].strip() == "H100" for row in rows)
    assert all(row.split("│")[7].strip().lower().startswith("us-") for row in rows)
    prices = [float(row.split("│")[0].strip().lstrip("$")) for row in rows]
    assert prices == sorted(prices) and max(prices) <= 2.5
    footer = shown.stdout.strip().splitlines()[-1]
    assert footer.startswith("degraded or stale: lambdalabs (degraded, stale, bundled snapshot")
    assert "vastai" not in footer


def test_offers_json_and_csv_carry_the_same_offers(gateway: Embedded, keys: dict[str, str]) -> None:
    as_json = gpubroker(gateway, "offers", "H100:2", "--json", key=keys["pro"])
    as_csv = gpubroker(gateway, "offers", "H100:2", "--csv", key=keys["pro"])
    assert as_json.returncode == 0 and as_csv.returncode == 0, as_json.stderr + as_csv.stderr
    offers = json.loads(as_json.stdout)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert offers and [o["id"] for o in offers] == [row["id"] for row in rows]
    assert all(o["gpu_type"] == "H100" and o["gpu_count"] == 2 for o in offers)
    first = offers[0]
    assert first["price_per_gpu"] == pytest.approx(first["price_per_hour"] / 2)
    assert float(rows[0]["price_per_hour"]) == pytest.approx(first["price_per_hour"])
    assert "degraded or stale: lambdalabs" in as_json.stderr  # the footer stays off standard output


def test_group_by_gpu_and_provider(gateway: Embedded, keys: dict[str, str]) -> None:
    grouped = gpubroker(gateway, "offers", "--group-by", "gpu,provider", "--json", key=keys["pro"])
    assert grouped.returncode == 0, grouped.stderr
    groups = json.loads(grouped.stdout)
    everything = json.loads(gpubroker(gateway, "offers", "--all", "--json", key=keys["pro"]).stdout)
    trusted = [o for o in everything if o["quarantined"] is None]
    assert sum(g["offers"] for g in groups) == len(trusted)
    h100 = [o for o in trusted if o["gpu_type"] == "H100" and o["provider"] == "vastai"]
    [group] = [g for g in groups if g["gpu"] == "H100" and g["provider"] == "vastai"]
    assert group["offers"] == len(h100)
    assert group["min_price"] == pytest.approx(min(o["price_per_hour"] for o in h100))
    table = gpubroker(gateway, "offers", "--group-by", "gpu,provider", key=keys["pro"])
    assert "min $/GPU/h" in table.stdout and f"{len(groups)} groups" in table.stdout


def test_rank_providers_gpus_and_history(gateway: Embedded, keys: dict[str, str]) -> None:
    ranked = gpubroker(gateway, "rank", "H100", "--w-price", "1", "--limit", "3", "--json", key=keys["pro"])
    assert ranked.returncode == 0, ranked.stderr
    ranking = json.loads(ranked.stdout)
    assert [item["rank"] for item in ranking["items"]] == [1, 2, 3]
    table = gpubroker(gateway, "rank", "H100", "--limit", "3", key=keys["pro"]).stdout
    assert "closeness" in table and "weights: price 0.40" in table
    providers = gpubroker(gateway, "providers", "--csv", key=keys["pro"])
    states = {row["name"]: row for row in csv.DictReader(io.StringIO(providers.stdout))}
    assert states["vastai"]["status"] == "healthy" and states["vastai"]["stale"] == "false"
    assert states["lambdalabs"]["status"] == "degraded" and states["lambdalabs"]["stale"] == "true"
    gpus = gpubroker(gateway, "gpus", "--vendor", "amd", "--json", key=keys["pro"])
    assert {gpu["vendor"] for gpu in json.loads(gpus.stdout)} == {"amd"}
    chart = gpubroker(gateway, "history", "H100", "--days", "2", key=keys["pro"])
    assert chart.returncode == 0, chart.stderr
    assert "vastai" in chart.stdout and "lowest $/h" in chart.stdout
    assert any(bar in chart.stdout for bar in "▁▂▃▄▅▆▇█")


@pytest.mark.parametrize(
    ("args", "key", "status", "says"),
    [
        (("offers", "--sort", "topsis"), None, 1, "gpubroker: not signed in (401): the 'sort' parameter needs the pro"),
        (("rank", "H100"), "free", 1, "gpubroker: refused (403): this needs the pro plan or higher (you have free)"),
        (("offers", "--continent", "mars"), "pro", 1, "gpubroker: bad continent (422): unknown continent 'mars'"),
        (("offers", "--max-price", "cheap"), "pro", 2, "invalid float value: 'cheap'"),
        (("offers", "H100:x"), "pro", 2, "the count after ':' must be a whole number"),
        (("offers", "--group-by", "colour"), "pro", 2, "group by one or more of: gpu, provider"),
    ],
)
def test_each_error_is_one_line_and_non_zero(
    gateway: Embedded, keys: dict[str, str], args: tuple[str, ...], key: str | None, status: int, says: str
) -> None:
    result = gpubroker(gateway, *args, key=None if key is None else keys[key])
    assert result.returncode == status
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr, result.stderr
    assert result.stdout == ""


def test_the_config_file_names_the_gateway_and_the_key(gateway: Embedded, keys: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{gateway.url}"\napi_key = "{keys["pro"]}"\n')
    environment = clean_environment(GPUBROKER_CONFIG=str(config), **WIDE)
    ranked = subprocess.run(
        [BIN / "gpubroker", "rank", "H100", "--limit", "1", "--json"], env=environment, capture_output=True, text=True
    )
    assert ranked.returncode == 0, ranked.stderr
    assert json.loads(ranked.stdout)["items"][0]["rank"] == 1
    config.write_text("url = [unclosed")
    broken = subprocess.run([BIN / "gpubroker", "providers"], env=environment, capture_output=True, text=True)
    assert broken.returncode == 1 and broken.stderr.startswith(f"gpubroker: cannot read the config file {config}")


def test_an_unreachable_gateway_is_one_line(gateway: Embedded) -> None:
    result = gpubroker(gateway, "offers", "--url", "http://127.0.0.1:1", "--retries", "0")
    assert result.returncode == 3
    assert result.stderr.startswith("gpubroker: cannot reach the gateway at http://127.0.0.1:1")
    assert len(result.stderr.strip().splitlines()) == 1


def test_watch_shows_a_price_change_live(gateway: Embedded, keys: dict[str, str], recordings: Path) -> None:
    """Through a pseudo-terminal, as a person sees it: the replayed provider lowers a price, the
    next poll publishes it, and the live table marks it ▼ with the new price."""
    environment = clean_environment(GPUBROKER_URL=gateway.url, GPUBROKER_API_KEY=keys["pro"], **WIDE)
    controller, terminal = pty.openpty()
    watcher = subprocess.Popen(
        [BIN / "gpubroker", "watch", "H100", "--max-price", "2.5"],
        stdin=terminal, stdout=terminal, stderr=terminal, env=environment, close_fds=True,
    )  # fmt: skip
    os.close(terminal)
    screen = ""
    try:
        screen = _read_until(controller, lambda text: "offers; live" in text)
        assert "▼" not in screen
        changed = change_price(recordings, "H100 SXM", 1, 0.5)
        changed_at = time.monotonic()
        screen = _read_until(controller, lambda text: "▼" in text)
        assert time.monotonic() - changed_at < 10
        new_price = [
            o["price_per_hour"]
            for o in json.loads(gpubroker(gateway, "offers", "H100:1", "--json", key=keys["pro"]).stdout)
            if o["provider_offer_id"].startswith(str(changed))
        ]
        assert new_price and f"▼ {price(Decimal(str(new_price[0])))}" in screen
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
        os.close(controller)


def test_a_refused_key_then_429_with_its_retry_time(gateway: Embedded) -> None:
    """Last in this module: it blocks credentials from this address for a minute."""
    unknown = gpubroker(gateway, "providers", key="gpb_not-a-key")
    assert unknown.returncode == 1 and "not signed in (401): the API key is unknown or revoked" in unknown.stderr
    for _ in range(25):  # past the failed sign-ins an address may make in a minute
        request = urllib.request.Request(gateway.url + "/api/v2/providers", headers={"X-API-Key": "gpb_wrong"})
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=10)
    limited = gpubroker(gateway, "providers", "--retries", "0", key="gpb_not-a-key")
    assert limited.returncode == 1
    assert "gpubroker: rate limited (429): too many failed sign-ins" in limited.stderr
    assert "retry after" in limited.stderr and len(limited.stderr.strip().splitlines()) == 1


def _read_until(controller: int, done: object, timeout_s: float = 20.0) -> str:
    """What the terminal showed until ``done(text)`` holds for the text since the last call."""
    text = ""
    deadline = time.monotonic() + timeout_s
    while not done(text):  # type: ignore[operator]
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the terminal never showed it; it showed:\n{text[-3000:]}"
        ready, _, _ = select.select([controller], [], [], remaining)
        if ready:
            try:
                text += os.read(controller, 65536).decode("utf-8", "replace")
            except OSError:  # the command ended
                break
    return text
