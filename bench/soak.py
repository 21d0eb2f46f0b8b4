"""Soak: the whole system under load while things break, one fault a phase, nothing lost.

On this machine's real services (``scripts/services up``): every installed provider replayed on
loopback with prices moving on every poll (``bench/market.py``), some of them misbehaving all
along (5xx bursts, slow answers, malformed records: ``CHAOS``), each provider's worker as its own
``gpubroker worker`` process in one of two pools, two ``gpubroker serve`` gateways in production
mode behind a round-robin load balancer (``bench/balancer.py``), and clients in processes of
their own (``bench/soak_load.py``): anonymous reads through the load balancer and keyed reads
spread over both instances, SSE and WebSocket subscribers pinned to an instance or roaming, and
an Enterprise user's alert rules and webhooks with their receiver and the delivery loop
(``bench/soak_alerts.py``). With ``--flink``, the stream analytics job (``bench/soak_flink.py``);
with ``--airflow``, Airflow's scheduler runs the webhook delivery and plugin health DAGs in the
delivery loop's place (``bench/soak_airflow.py``).

Faults, one a phase: a provider failing half its requests, Redis, Kafka and OpenBao stopped and
started, a gateway sent SIGTERM and started again, a worker SIGKILLed and started again.

Accounting, at the end: every price update the workers wrote to the topic, by offer and by its
place in that offer's sequence, against what each subscriber received; an update a subscriber
missed counts as lost unless its stream told it of a gap at that place in the stream, between the
updates of that offer it received around it, and no gap stands for more events than it counted (a
WebSocket, which does not resume, is told by losing its connection). Every read answered 2xx, or
a documented 429 or 503; every read during a provider's failed polls flags it; every malformed
record rejected by its worker and none published; every alert fired once per crossing; every
webhook delivery delivered, failed for good or dead-lettered, with its reason.

    scripts/services up && eval "$(scripts/services env)"
    .venv/bin/python bench/soak.py [--minutes 15] [--flink] [--airflow]   # docs/soak.md, docs/soak-*.png
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import hvac
import orjson
from aiokafka import TopicPartition

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
from bench.market import Chaos, Market
from bench.servers import ROOT, free_port
from bench.soak_accounting import Result, Subscriber, Window, account, announced_gaps, covered
from bench.soak_airflow import Orchestration
from bench.soak_airflow import available as airflow_available
from bench.soak_alerts import Alerting
from bench.soak_alerts import account as account_alerts
from bench.soak_alerts import environment as alerting_environment
from bench.soak_flink import Analytics
from bench.soak_flink import account as account_flink
from bench.soak_flink import available as flink_available
from bench.soak_report import markdown, plots
from gpubroker.core import events
from gpubroker.core.plugins import load_providers


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


DEAD_WEBHOOKS = events.dead_letter_topic(events.WEBHOOKS)
TOPICS = (
    events.PRICE_UPDATES,
    events.PROVIDER_EVENTS,
    events.OFFERS,
    events.PRICE_ALERTS,
    events.WEBHOOKS,
    DEAD_WEBHOOKS,
    events.PRICE_AGGREGATES,
)
"""What the soak reads back at the end, from where each partition ended at the start."""

CHAOS = Chaos(bursts=("runpod",), slow=("lambdalabs",), malformed=("vastai",))
"""Providers misbehaving all along, besides the scheduled faults."""


class Soak:
    """Runs the topology, the load and the faults; ``run`` returns what everyone saw."""

    def __init__(
        self,
        faults: tuple[Fault, ...],
        *,
        poll_s: float,
        baseline_s: float,
        scratch: Path,
        chaos: Chaos = CHAOS,
        flink: bool = False,
        airflow: bool = False,
    ) -> None:
        self.faults = faults
        self.poll_s = poll_s
        self.baseline_s = baseline_s
        self.scratch = scratch
        self.market = Market(chaos=chaos)
        self.env = production_environment(scratch, GPUBROKER_SHUTDOWN_DRAIN_S="2", **alerting_environment())
        self.alerting = Alerting(self.env, scratch, self._log)
        self.analytics = Analytics(self.bootstrap) if flink else None
        self.orchestration = Orchestration(self.bootstrap) if airflow else None
        self.gateways: list[Gateway] = []
        self.workers: dict[str, Process] = {}
        self.clients: list[tuple[str, Process]] = []
        self.balancer: Process | None = None
        self.balancer_url = ""
        self.start: dict[TopicPartition, int] = {}
        self.victim = "tensordock"
        """The provider whose worker is killed and whose API fails half its requests."""

    def run(self) -> Result:
        with ExitStack() as stack:
            stack.enter_context(self.market.running())
            subprocess.run([BIN / "gpubroker", "migrate"], env=self.env, check=True, capture_output=True)
            self._seed_credentials()
            stack.enter_context(self._gateways())
            stack.enter_context(self._balancer())
            stack.enter_context(self.alerting.running(self.balancer_url, delivery_loop=self.orchestration is None))
            if self.orchestration is not None:
                networks = self.env["GPUBROKER_WEBHOOK_ALLOWED_NETWORKS"]
                token, cert = self.alerting.service_token, str(self.alerting.cert)
                stack.enter_context(self.orchestration.running(self.balancer_url, token, networks, cert))
            stack.enter_context(self._clients())
            self.start = asyncio.run(topic_ends(self.bootstrap, TOPICS))
            if self.analytics is not None:
                stack.enter_context(self.analytics.running())
            with self._workers():
                windows = self._faults()
                self.market.calm()
                time.sleep(self.poll_s + 5)  # the polls under way finish and report what they rejected
            time.sleep(5)  # what the workers delivered last reaches both gateways and their subscribers
            self.alerting.settle()
        result = Result(windows, self._read_lines("reads"), [], self._subscribers())
        updates, alerts, deliveries, dead, aggregates = [], [], [], [], []
        for topic, key, value, timestamp in asyncio.run(written_since(self.bootstrap, self.start)):
            written = timestamp / 1000
            if topic in (events.PRICE_UPDATES, events.OFFERS) and "n/a" in key:
                result.leaked.append(key)
            if value is None:
                continue
            if topic == events.PRICE_UPDATES:
                update = events.PriceUpdate.decode(value)
                updates.append((update, written))
                result.published.append((key, str(update.old_price), str(update.new_price), written))
            elif topic == events.PROVIDER_EVENTS:
                result.provider_events.append((events.ProviderEvent.decode(value), written))
            elif topic == events.PRICE_ALERTS and isinstance(alert := events.decode_alert(value), events.PriceAlert):
                alerts.append((alert, written))
            elif topic == events.WEBHOOKS:
                deliveries.append(events.WebhookDelivery.decode(value))
            elif topic == DEAD_WEBHOOKS:
                dead.append(events.WebhookDelivery.decode(value))
            elif topic == events.PRICE_AGGREGATES:
                aggregates.append(events.PriceAggregate.decode(value))
        result.malformed_served = self.market.malformed_served
        if self.orchestration is not None:
            result.airflow = self.orchestration.account
        if self.analytics is not None:
            result.flink = account_flink(self.analytics.account, [u for u, _ in updates], aggregates)
        (self.scratch / "published.jsonl").write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in result.published))
        account(result)
        subscriber = self._lines("alerts-ws")
        gaps = announced_gaps(subscriber, resumes=False, kind="alert")
        result.alerts = account_alerts(
            self.alerting,
            updates,
            alerts,
            deliveries,
            dead,
            [line for line in subscriber if line.get("kind") == "alert" and line.get("alert_id") is not None],
            self._lines("webhook-receiver"),
            lambda at: covered(at, gaps),
        )
        return result

    @property
    def bootstrap(self) -> str:
        return self.env["GPUBROKER_KAFKA_BOOTSTRAP"]

    # --- the topology -------------------------------------------------------------------------

    def _seed_credentials(self) -> None:
        """Made-up values for every credential a provider takes, where its worker reads them (the
        dev OpenBao keeps nothing across a restart, so again after each)."""
        client = self._vault()
        for provider in load_providers():
            values = {spec.name: f"soak-{spec.name}-0123456789" for spec in provider.info.credentials}
            if values:
                client.secrets.kv.v2.create_or_update_secret(
                    path=f"gpubroker/providers/{provider.info.name}", secret=values, mount_point="secret"
                )

    def _vault(self) -> hvac.Client:
        return hvac.Client(url=self.env["GPUBROKER_VAULT_ADDR"], token=self.env["GPUBROKER_VAULT_TOKEN"])

    def _vault_contents(self, folder: str = "gpubroker/") -> dict[str, dict[str, str]]:
        """Every secret under ``folder``: the dev OpenBao keeps nothing across a restart, where a
        real one would keep its storage, so the soak puts it all back (credentials, the token
        signing keys, the webhooks' secrets)."""
        kv = self._vault().secrets.kv.v2
        found: dict[str, dict[str, str]] = {}
        for name in kv.list_secrets(path=folder, mount_point="secret")["data"]["keys"]:
            if name.endswith("/"):
                found |= self._vault_contents(folder + name)
            else:
                found[folder + name] = kv.read_secret_version(
                    path=folder + name, mount_point="secret", raise_on_deleted_version=True
                )["data"]["data"]
        return found

    def _restore_vault(self, contents: dict[str, dict[str, str]]) -> None:
        kv = self._vault().secrets.kv.v2
        for path, secret in contents.items():
            kv.create_or_update_secret(path=path, secret=secret, mount_point="secret")

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
    def _balancer(self) -> Iterator[None]:
        """A round-robin TCP load balancer in front of both gateways (``bench/balancer.py``)."""
        port = free_port()
        backends = ",".join(f"127.0.0.1:{g.port}" for g in self.gateways)
        command = [sys.executable, str(ROOT / "bench" / "balancer.py"), "--port", str(port), "--backends", backends]
        self.balancer = Process("balancer", command, self.env, self._log("balancer"))
        self.balancer.start()
        self.balancer_url = f"http://127.0.0.1:{port}"
        try:
            yield
        finally:
            self.balancer.stop()

    @contextmanager
    def _clients(self) -> Iterator[None]:
        direct = ",".join(g.url for g in self.gateways)
        key = api_key(self.env, self.gateways[0].url, "pro")
        load = [sys.executable, str(ROOT / "bench" / "soak_load.py")]
        specs = {  # name: arguments, and whether it goes through the load balancer or spreads itself
            "reads-anonymous": (["reads", "--rate", "4"], True),
            "reads-keyed": (["reads", "--rate", "6", "--key", key], False),
            "sse-pinned-0": (["sse", "--key", key, "--pin", "0"], False),
            "sse-pinned-1": (["sse", "--key", key, "--pin", "1"], False),
            "sse-roaming-a": (["sse", "--key", key], True),
            "sse-roaming-b": (["sse", "--key", key], False),
            "ws-pinned-0": (["ws", "--key", key, "--pin", "0"], False),
            "ws-balanced": (["ws", "--key", key], True),
        }
        for name, (args, balanced) in specs.items():
            urls = self.balancer_url if balanced else direct
            out = self.scratch / f"{name}.jsonl"
            client = Process(name, [*load, *args, "--gateways", urls, "--out", str(out)], self.env, self._log(name))
            client.start()
            self.clients.append((name, client))
        try:
            deadline = time.monotonic() + 60
            subscribers = [name for name in specs if name.startswith(("sse", "ws"))] + ["alerts-ws"]
            while not all(self._connected(name) for name in subscribers):
                if time.monotonic() > deadline:
                    raise RuntimeError("the subscribers did not connect within 60s")
                time.sleep(0.3)
            yield
        finally:
            for _, client in self.clients:
                client.stop()

    @contextmanager
    def _workers(self) -> Iterator[None]:
        """A ``gpubroker worker`` process per provider, in two pools as on two nodes: the providers
        alternate between them, and each pool keeps its workers' state (outboxes, health files)
        in a data directory of its own."""
        env = {
            **self.env,
            "GPUBROKER_PROVIDER_BASE_URLS": orjson.dumps(self.market.base_urls).decode(),
            "GPUBROKER_POLL_INTERVALS": orjson.dumps(dict.fromkeys(self.market.providers, self.poll_s)).decode(),
        }
        for number, name in enumerate(self.market.providers):
            pool = f"pool-{'ab'[number % 2]}"
            data_dir = self.scratch / pool
            data_dir.mkdir(exist_ok=True)
            command = [str(BIN / "gpubroker"), "worker", "--provider", name, "--metrics-port", "0"]
            pool_env = {**env, "GPUBROKER_DATA_DIR": str(data_dir)}
            self.workers[name] = Process(f"worker-{name}", command, pool_env, self._log(f"{pool}-worker-{name}"))
            self.workers[name].start()
        try:
            yield
        finally:
            for worker in self.workers.values():
                worker.stop()

    # --- the faults ---------------------------------------------------------------------------

    def _faults(self) -> list[Window]:
        windows = [Window("baseline", time.time())]
        self._make_rules()
        time.sleep(max(0.0, windows[0].start + self.baseline_s - time.time()))
        for fault in self.faults:
            windows[-1].end = time.time()
            window = Window(
                fault.name,
                time.time(),
                gateway=self.gateways[1].url if fault.kind == "gateway" else "",
                bus_away=fault.kind == "kafka",
            )
            heal = self._inject(fault)
            time.sleep(fault.down_s)
            heal()
            window.healed = time.time()
            windows.append(window)
            time.sleep(fault.observe_s)
        windows[-1].end = time.time()
        return windows

    def _make_rules(self, within_s: float = 60) -> None:
        """The alert rules, on two providers' prices as soon as they move (``soak_alerts``)."""
        avoid = {self.victim, *self.market.chaos.bursts, *self.market.chaos.slow, *self.market.chaos.malformed}
        deadline = time.monotonic() + within_s
        while not self.alerting.rules:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no two providers' prices moved within {within_s:.0f}s")
            records = asyncio.run(written_since(self.bootstrap, self.start))
            updates = [events.PriceUpdate.decode(v) for t, _, v, _ in records if t == events.PRICE_UPDATES and v]
            if len({u.provider for u in updates} - avoid) >= 2:
                self.alerting.make_rules(updates, avoid)
            else:
                time.sleep(1)

    def _inject(self, fault: Fault) -> Callable[[], None]:
        """Start ``fault``; what ends it."""
        if fault.kind == "provider":
            self.market.fail(self.victim, 0.5)
            return lambda: self.market.heal(self.victim)
        if fault.kind in ("redis", "kafka", "vault"):
            kept = self._vault_contents() if fault.kind == "vault" else {}
            services("stop", fault.kind)

            def restart() -> None:
                services("start", fault.kind)
                if fault.kind == "vault":
                    self._restore_vault(kept)

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
            Subscriber(name, "pinned" in name, self._lines(name), resumes=name.startswith("sse"))
            for name, _ in self.clients
            if name.startswith(("sse", "ws"))
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="length of the run (default 15)")
    parser.add_argument("--poll-s", type=float, default=10.0, help="seconds between a provider's polls")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where soak.md and the plots go")
    parser.add_argument(
        "--flink", action="store_true", help="run the stream analytics job too (scripts/services up flink)"
    )
    parser.add_argument(
        "--airflow",
        action="store_true",
        help="deliver webhooks and check providers with the Airflow DAGs (scripts/services prepare airflow)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep every process's log, every client's record and the updates published in this folder (new)",
    )
    args = parser.parse_args()
    unset = missing_services()
    if unset:
        sys.exit(f"bench/soak.py needs the services: {', '.join(unset)} unset (see the docstring)")
    if args.flink and not flink_available():
        sys.exit('--flink needs the Flink cluster: scripts/services up flink && eval "$(scripts/services env)"')
    if args.airflow and not airflow_available():
        sys.exit("--airflow needs Airflow's environment: scripts/services prepare airflow")
    if args.keep is not None and args.keep.exists():
        sys.exit(f"--keep {args.keep}: it exists; give a new folder")
    if args.keep is not None:
        args.keep.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as temporary:
        soak = Soak(
            long_schedule(args.minutes),
            poll_s=args.poll_s,
            baseline_s=60,
            scratch=args.keep or Path(temporary),
            flink=args.flink,
            airflow=args.airflow,
        )
        result = soak.run()
    command = ".venv/bin/python bench/soak.py" + (f" --minutes {args.minutes:g}" if args.minutes != 15 else "")
    command += " --flink" if args.flink else ""
    command += " --airflow" if args.airflow else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.md").write_text(markdown(result, command, args.minutes, CHAOS))
    plots(result, args.out)
    print((args.out / "soak.md").read_text())
    if (
        any(result.lost.values())
        or result.undocumented
        or result.unflagged
        or result.leaked
        or result.rejected != result.malformed_served
        or result.alerts.problems
        or (result.flink is not None and (result.flink.differing or result.flink.duplicated))
        or (result.airflow is not None and result.airflow.failed_tasks)
    ):
        sys.exit("something was lost, unflagged or failed undocumented; see the report")


if __name__ == "__main__":
    main()
