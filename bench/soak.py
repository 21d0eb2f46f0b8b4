"""Soak: the whole system under load while things break, one fault a phase, nothing lost.

On this machine's real services (``scripts/services up``): every installed provider replayed on
loopback with prices moving on every poll (``bench/market.py``), each provider's worker as its own
``gpubroker worker`` process, two ``gpubroker serve`` gateways in production mode, and clients
in processes of their own (``bench/soak_load.py``): anonymous and keyed list reads spread over
both instances, SSE subscribers pinned to each instance and others roaming between them.

Faults, one a phase: a provider failing half its requests, Redis, Kafka and OpenBao stopped and
started, a gateway sent SIGTERM and started again, a worker SIGKILLed and started again.

Accounting, at the end: every price update the workers wrote to the topic, by offer and by its
place in that offer's sequence, against what each subscriber received; an update a subscriber
missed counts as lost unless its stream told it of a gap covering it. Every read answered 2xx,
or a documented 429 or 503.

    scripts/services up && eval "$(scripts/services env)"
    .venv/bin/python bench/soak.py [--minutes 15]      # writes docs/soak.md and docs/soak-*.png
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import hvac
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cluster import (
    BIN,
    Gateway,
    Process,
    api_key,
    missing_services,
    production_environment,
    services,
    topic_ends,
    written_since,
)
from bench.market import Market
from bench.servers import ROOT
from gpubroker.core import events
from gpubroker.core.plugins import load_providers

DOCUMENTED = frozenset({429, 503})
"""Statuses the API documents for an overloaded or degraded moment; anything else non-2xx is a bug."""


@dataclass(frozen=True)
class Fault:
    name: str
    kind: str
    """provider, redis, kafka, vault, gateway or worker"""
    down_s: float
    """How long the fault lasts (for a killed process: until it is started again)."""
    observe_s: float
    """How long the system runs on after the fault ends, before the next one."""


SHORT = (
    Fault("worker SIGKILLed", "worker", 5, 25),
    Fault("Redis stopped", "redis", 12, 30),
    Fault("gateway SIGTERMed", "gateway", 3, 35),
)
"""The suite's variant: about three minutes with the start and the accounting."""


def long_schedule(minutes: float) -> tuple[Fault, ...]:
    """Every fault, each given an equal share of ``minutes`` after a baseline."""
    share = (minutes * 60 - 60) / 6
    down = share * 0.35
    return (
        Fault("provider failing 50%", "provider", down, share - down),
        Fault("Redis stopped", "redis", down, share - down),
        Fault("Kafka stopped", "kafka", down, share - down),
        Fault("OpenBao stopped", "vault", down, share - down),
        Fault("gateway SIGTERMed", "gateway", 5, share - 5),
        Fault("worker SIGKILLed", "worker", 5, share - 5),
    )


@dataclass
class Window:
    name: str
    start: float
    healed: float = 0.0
    end: float = 0.0


@dataclass
class Subscriber:
    name: str
    pinned: bool
    lines: list[dict[str, object]]


@dataclass
class Result:
    windows: list[Window]
    reads: list[dict[str, object]]
    published: list[tuple[str, str, str, float]]
    """Price updates on the topic: offer id, old, new, time written."""
    subscribers: list[Subscriber]
    lost: dict[str, int] = field(default_factory=dict)
    """Per subscriber, updates missed without a gap announced that covers them."""
    told: dict[str, int] = field(default_factory=dict)
    """Per subscriber, updates missed inside a gap its stream announced."""
    unexpected: dict[str, int] = field(default_factory=dict)
    """Per subscriber, price updates received that were never published (or twice)."""

    @property
    def undocumented(self) -> list[dict[str, object]]:
        return [r for r in self.reads if not (200 <= int(r["status"]) < 300 or r["status"] in DOCUMENTED)]  # type: ignore[call-overload]


class Soak:
    """Runs the topology, the load and the faults; ``run`` returns what everyone saw."""

    def __init__(self, faults: tuple[Fault, ...], *, poll_s: float, baseline_s: float, scratch: Path) -> None:
        self.faults = faults
        self.poll_s = poll_s
        self.baseline_s = baseline_s
        self.scratch = scratch
        self.market = Market()
        self.env = production_environment(scratch, GPUBROKER_SHUTDOWN_DRAIN_S="2")
        self.gateways: list[Gateway] = []
        self.workers: dict[str, Process] = {}
        self.clients: list[tuple[str, Process]] = []
        self.victim = "vastai"
        """The provider whose worker is killed and whose API fails half its requests."""

    def run(self) -> Result:
        with ExitStack() as stack:
            stack.enter_context(self.market.running())
            subprocess.run([BIN / "gpubroker", "migrate"], env=self.env, check=True, capture_output=True)
            self._seed_credentials()
            stack.enter_context(self._gateways())
            stack.enter_context(self._clients())
            bootstrap = self.env["GPUBROKER_KAFKA_BOOTSTRAP"]
            start = asyncio.run(topic_ends(bootstrap, (events.PRICE_UPDATES,)))
            with self._workers():
                windows = self._faults()
            time.sleep(5)  # what the workers delivered last reaches both gateways and their subscribers
        records = asyncio.run(written_since(bootstrap, start))
        published = []
        for _, key, value, timestamp in records:
            if value is not None:
                update = events.PriceUpdate.decode(value)
                published.append((key, str(update.old_price), str(update.new_price), timestamp / 1000))
        result = Result(windows, self._read_lines("reads"), published, self._subscribers())
        account(result)
        return result

    # --- the topology -------------------------------------------------------------------------

    def _seed_credentials(self) -> None:
        """Made-up values for every credential a provider takes, where its worker reads them (the
        dev OpenBao keeps nothing across a restart, so again after each)."""
        client = hvac.Client(url=self.env["GPUBROKER_VAULT_ADDR"], token=self.env["GPUBROKER_VAULT_TOKEN"])
        for provider in load_providers():
            values = {spec.name: f"soak-{spec.name}-0123456789" for spec in provider.info.credentials}
            if values:
                client.secrets.kv.v2.create_or_update_secret(
                    path=f"gpubroker/providers/{provider.info.name}", secret=values, mount_point="secret"
                )

    @contextmanager
    def _gateways(self) -> Iterator[None]:
        self.gateways = [Gateway(f"gateway-{n}", self.env, self.scratch / f"gateway-{n}.log") for n in range(2)]
        try:
            for gateway in self.gateways:
                gateway.start()
            for gateway in self.gateways:
                gateway.wait_ready()
            yield
        finally:
            for gateway in self.gateways:
                gateway.stop()

    @contextmanager
    def _clients(self) -> Iterator[None]:
        urls = ",".join(g.url for g in self.gateways)
        key = api_key(self.env, self.gateways[0].url, "pro")
        load = [sys.executable, str(ROOT / "bench" / "soak_load.py")]
        specs = {
            "reads-anonymous": ["reads", "--rate", "4"],
            "reads-keyed": ["reads", "--rate", "6", "--key", key],
            "sse-pinned-0": ["sse", "--key", key, "--pin", "0"],
            "sse-pinned-1": ["sse", "--key", key, "--pin", "1"],
            "sse-roaming-a": ["sse", "--key", key],
            "sse-roaming-b": ["sse", "--key", key],
        }
        for name, args in specs.items():
            out = self.scratch / f"{name}.jsonl"
            client = Process(name, [*load, *args, "--gateways", urls, "--out", str(out)], self.env, self._log(name))
            client.start()
            self.clients.append((name, client))
        try:
            deadline = time.monotonic() + 60
            while not all(self._connected(name) for name in specs if name.startswith("sse")):
                if time.monotonic() > deadline:
                    raise RuntimeError("the SSE subscribers did not connect within 60s")
                time.sleep(0.3)
            yield
        finally:
            for _, client in self.clients:
                client.stop()

    @contextmanager
    def _workers(self) -> Iterator[None]:
        env = {
            **self.env,
            "GPUBROKER_PROVIDER_BASE_URLS": orjson.dumps(self.market.base_urls).decode(),
            "GPUBROKER_POLL_INTERVALS": orjson.dumps(dict.fromkeys(self.market.providers, self.poll_s)).decode(),
        }
        for name in self.market.providers:
            command = [str(BIN / "gpubroker"), "worker", "--provider", name, "--metrics-port", "0"]
            self.workers[name] = Process(f"worker-{name}", command, env, self._log(f"worker-{name}"))
            self.workers[name].start()
        try:
            yield
        finally:
            for worker in self.workers.values():
                worker.stop()

    # --- the faults ---------------------------------------------------------------------------

    def _faults(self) -> list[Window]:
        windows = [Window("baseline", time.time())]
        time.sleep(self.baseline_s)
        for fault in self.faults:
            windows[-1].end = time.time()
            window = Window(fault.name, time.time())
            heal = self._inject(fault)
            time.sleep(fault.down_s)
            heal()
            window.healed = time.time()
            windows.append(window)
            time.sleep(fault.observe_s)
        windows[-1].end = time.time()
        return windows

    def _inject(self, fault: Fault) -> Callable[[], None]:
        """Start ``fault``; what ends it."""
        if fault.kind == "provider":
            self.market.fail(self.victim, 0.5)
            return lambda: self.market.heal(self.victim)
        if fault.kind in ("redis", "kafka", "vault"):
            services("stop", fault.kind)

            def restart() -> None:
                services("start", fault.kind)
                if fault.kind == "vault":
                    self._seed_credentials()

            return restart
        if fault.kind == "gateway":  # the main process drains, then stops its server's workers
            process: Process = self.gateways[1]
            process.signal(signal.SIGTERM, group=False)
        else:
            process = self.workers[self.victim]
            process.signal(signal.SIGKILL)
        process.wait(timeout=60)

        def start_again() -> None:
            process.start()
            if isinstance(process, Gateway):
                process.wait_ready()

        return start_again

    # --- what the clients saw -----------------------------------------------------------------

    def _log(self, name: str) -> Path:
        return self.scratch / f"{name}.log"

    def _lines(self, name: str) -> list[dict[str, object]]:
        path = self.scratch / f"{name}.jsonl"
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]

    def _connected(self, name: str) -> bool:
        return any(line.get("kind") == "connected" and line.get("status") == 200 for line in self._lines(name))

    def _read_lines(self, prefix: str) -> list[dict[str, object]]:
        return [
            {**line, "client": name}
            for name, _ in self.clients
            if name.startswith(prefix)
            for line in self._lines(name)
        ]

    def _subscribers(self) -> list[Subscriber]:
        return [
            Subscriber(name, "pinned" in name, self._lines(name)) for name, _ in self.clients if name.startswith("sse")
        ]


GAP_SLACK_S = 2.0
"""An update written this close to the edges of an announced gap counts as inside it."""


def account(result: Result) -> None:
    """Match each subscriber's price updates to the published ones, offer by offer and in order."""
    published: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for key, old, new, at in result.published:
        published[key].append((old, new, at))
    for subscriber in result.subscribers:
        received: dict[str, list[tuple[str, str]]] = defaultdict(list)
        gaps = _announced_gaps(subscriber.lines)
        for line in subscriber.lines:
            if line.get("kind") == "price_update":
                received[str(line["offer_id"])].append((_number(str(line["old"])), _number(str(line["new"]))))
        lost = told = unexpected = 0
        for key in published.keys() | received.keys():
            missed, extra = _match(published.get(key, []), received.get(key, []))
            unexpected += extra
            for at in missed:
                if any(begin - GAP_SLACK_S <= at <= end + GAP_SLACK_S for begin, end in gaps):
                    told += 1
                else:
                    lost += 1
        result.lost[subscriber.name] = lost
        result.told[subscriber.name] = told
        result.unexpected[subscriber.name] = unexpected


def _announced_gaps(lines: list[dict[str, object]]) -> list[tuple[float, float]]:
    """For each ``gap`` event, from the last price update before it to the gap's arrival."""
    gaps, last = [], 0.0
    for line in lines:
        if line.get("kind") == "price_update":
            last = float(line["t"])  # type: ignore[arg-type]
        elif line.get("kind") == "gap":
            gaps.append((last, float(line["t"])))  # type: ignore[arg-type]
    return gaps


def _match(published: list[tuple[str, str, float]], received: list[tuple[str, str]]) -> tuple[list[float], int]:
    """The published updates (their times) missing from ``received``, walking both in order, and
    how many received ones match nothing published."""
    missed: list[float] = []
    at = 0
    for old, new, written in published:
        if at < len(received) and received[at] == (_number(old), _number(new)):
            at += 1
        else:
            missed.append(written)
    return missed, len(received) - at


def _number(price: str) -> str:
    """One spelling for a price as the stream writes it (a JSON number) and the topic (a string)."""
    return "None" if price in ("None", "null") else str(Decimal(price).normalize())


# --- the report ---------------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _time_to_recover(result: Result, window: Window) -> float | None:
    """From the fault's end to the moment reads answer 2xx on both clients and each pinned
    subscriber has received a price update again."""
    if not window.healed:
        return None
    firsts = []
    for client in ("reads-anonymous", "reads-keyed"):
        ok = [float(r["t"]) for r in result.reads if r["client"] == client and r["status"] == 200]  # type: ignore[arg-type]
        firsts.append(min((t for t in ok if t >= window.healed), default=None))
    for subscriber in result.subscribers:
        if subscriber.pinned:
            times = [float(line["t"]) for line in subscriber.lines if line.get("kind") == "price_update"]  # type: ignore[arg-type]
            firsts.append(min((t for t in times if t >= window.healed), default=None))
    if any(first is None for first in firsts):
        return None
    return max(firsts) - window.healed  # type: ignore[type-var,operator]


def phase_table(result: Result) -> list[dict[str, object]]:
    rows = []
    for window in result.windows:
        reads = [r for r in result.reads if window.start <= float(r["t"]) < window.end]  # type: ignore[arg-type]
        errors = Counter("no answer" if r["status"] == 0 else str(r["status"]) for r in reads if r["status"] != 200)
        served = [float(r["ms"]) for r in reads if r["status"] == 200]  # type: ignore[arg-type]
        produced = sum(1 for *_, at in result.published if window.start <= at < window.end)
        consumed = {
            s.name: sum(
                1
                for line in s.lines
                if line.get("kind") == "price_update" and window.start <= float(line["t"]) < window.end  # type: ignore[arg-type]
            )
            for s in result.subscribers
            if s.pinned
        }
        rows.append(
            {
                "phase": window.name,
                "seconds": window.end - window.start,
                "fault_s": (window.healed - window.start) if window.healed else 0.0,
                "served": len(served),
                "p50": _percentile(served, 0.5),
                "p99": _percentile(served, 0.99),
                "errors": dict(errors),
                "produced": produced,
                "consumed": consumed,
                "recover_s": _time_to_recover(result, window),
            }
        )
    return rows


def markdown(result: Result, command: str, minutes: float) -> str:
    lines = [
        "# Soak: the whole system under load while things break",
        "",
        f"Produced by `{command}` ({minutes:g} minutes, {len(result.windows) - 1} faults) on a 2-core machine shared",
        "with other work: trust the shape and the zeros, not the absolute latencies.",
        "",
        "Topology: every installed provider replayed on loopback with prices moving on every poll",
        "(`bench/market.py`), one `gpubroker worker` process per provider, two `gpubroker serve` gateways",
        "in production mode on Kafka, Redis, PostgreSQL and OpenBao (`scripts/services`), and clients in",
        "processes of their own (`bench/soak_load.py`): anonymous and keyed list reads over both",
        "instances, an SSE subscriber pinned to each instance and two roaming between them. Prices move",
        "where a provider's answer carries them as numbers (20 of the 26 plugins); the others price from",
        "the plugin's own list, or as strings under names that do not say price, and change nothing.",
        "",
        "## Per phase",
        "",
        "| phase | s | fault s | reads served | p50 ms | p99 ms | errors by class | price updates produced |"
        " consumed (gateway-0 / gateway-1) | recovered after s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in phase_table(result):
        consumed = row["consumed"]
        assert isinstance(consumed, dict)
        errors = ", ".join(f"{name}: {n}" for name, n in sorted(row["errors"].items())) or "none"  # type: ignore[attr-defined]
        recover = row["recover_s"]
        lines.append(
            f"| {row['phase']} | {row['seconds']:.0f} | {row['fault_s']:.0f} | {row['served']} | {row['p50']:.1f} |"
            f" {row['p99']:.1f} | {errors} | {row['produced']} |"
            f" {consumed.get('sse-pinned-0', 0)} / {consumed.get('sse-pinned-1', 0)} |"
            f" {'-' if recover is None else f'{recover:.1f}'} |"
        )
    lines += [
        "",
        "Updates produced and consumed are counted by when they were written and received: an update",
        "written at the end of one phase (or held back by a fault) is received in the next.",
        "Errors by class are the reads' answers other than 200: 429 and 503 are documented (a rate limit,",
        "a dependency away); any other status, or no answer from either instance, is a failure.",
        "A fault's time to recover runs from its end to the moment both read clients are answered 200",
        "and each pinned subscriber receives a price update again.",
        "",
        "## Accounting",
        "",
        f"Price updates written to `{events.PRICE_UPDATES}`: {len(result.published)}, over"
        f" {len({key for key, *_ in result.published})} offers.",
        "",
        "| subscriber | received | missed, gap announced | missed, unannounced (lost) | unexpected |",
        "|---|---|---|---|---|",
    ]
    for subscriber in result.subscribers:
        received = sum(1 for line in subscriber.lines if line.get("kind") == "price_update")
        lines.append(
            f"| {subscriber.name} | {received} | {result.told[subscriber.name]} | {result.lost[subscriber.name]} |"
            f" {result.unexpected[subscriber.name]} |"
        )
    statuses = Counter(str(r["status"]) for r in result.reads)
    lines += [
        "",
        f"Reads: {len(result.reads)}, by status: {', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))};"
        f" undocumented failures: {len(result.undocumented)}.",
        "",
        "![throughput](soak-throughput.png)",
        "",
        "![latency](soak-latency.png)",
        "",
    ]
    return "\n".join(lines)


def plots(result: Result, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    origin = result.windows[0].start
    end = result.windows[-1].end - origin
    seconds = range(int(end) + 1)

    def per_second(times: list[float]) -> list[int]:
        counts = Counter(int(t - origin) for t in times)
        return [counts.get(s, 0) for s in seconds]

    def shade(axes: plt.Axes) -> None:
        for window in result.windows[1:]:
            axes.axvspan(window.start - origin, window.healed - origin, color="tab:red", alpha=0.15)
            axes.text(window.start - origin, 1.0, window.name, transform=axes.get_xaxis_transform(),
                      rotation=90, va="top", ha="right", fontsize=7)  # fmt: skip

    figure, (reads, updates) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    served = [float(r["t"]) for r in result.reads if r["status"] == 200]  # type: ignore[arg-type]
    failed = [float(r["t"]) for r in result.reads if r["status"] != 200]  # type: ignore[arg-type]
    reads.plot(seconds, per_second(served), label="reads answered 200", lw=0.8)
    reads.plot(seconds, per_second(failed), label="reads answered otherwise", lw=0.8, color="tab:red")
    reads.set_ylabel("requests/s")
    reads.legend(loc="lower left", fontsize=8)
    updates.plot(seconds, per_second([at for *_, at in result.published]), label="price updates written", lw=0.8)
    for subscriber in result.subscribers:
        if subscriber.pinned:
            got = [float(line["t"]) for line in subscriber.lines if line.get("kind") == "price_update"]  # type: ignore[arg-type]
            updates.plot(seconds, per_second(got), label=f"received by {subscriber.name}", lw=0.6)
    updates.set_ylabel("updates/s")
    updates.set_xlabel("seconds since the start")
    updates.legend(loc="upper left", fontsize=8)
    for axes in (reads, updates):
        shade(axes)
    figure.tight_layout()
    figure.savefig(folder / "soak-throughput.png", dpi=90)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(11, 3.5))
    buckets: dict[int, list[float]] = defaultdict(list)
    for r in result.reads:
        if r["status"] == 200:
            buckets[int((float(r["t"]) - origin) // 5) * 5].append(float(r["ms"]))  # type: ignore[arg-type]
    at = sorted(buckets)
    axes.plot(at, [_percentile(buckets[s], 0.5) for s in at], label="p50", lw=0.8)
    axes.plot(at, [_percentile(buckets[s], 0.99) for s in at], label="p99", lw=0.8)
    axes.set_yscale("log")
    axes.set_ylabel("read latency, ms (5 s buckets)")
    axes.set_xlabel("seconds since the start")
    axes.legend(loc="upper left", fontsize=8)
    shade(axes)
    figure.tight_layout()
    figure.savefig(folder / "soak-latency.png", dpi=90)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="length of the run (default 15)")
    parser.add_argument("--poll-s", type=float, default=10.0, help="seconds between a provider's polls")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where soak.md and the plots go")
    args = parser.parse_args()
    unset = missing_services()
    if unset:
        sys.exit(f"bench/soak.py needs the services: {', '.join(unset)} unset (see the docstring)")
    with tempfile.TemporaryDirectory() as scratch:
        soak = Soak(long_schedule(args.minutes), poll_s=args.poll_s, baseline_s=60, scratch=Path(scratch))
        result = soak.run()
    command = ".venv/bin/python bench/soak.py" + (f" --minutes {args.minutes:g}" if args.minutes != 15 else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(markdown(result, command, args.minutes))
    plots(result, args.out)
    print((args.out / "soak.md").read_text())
    if any(result.lost.values()) or result.undocumented:
        sys.exit("updates were lost or requests failed undocumented; see the report")


if __name__ == "__main__":
    main()
