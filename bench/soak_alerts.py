"""The soak's alert rules and webhooks: an Enterprise user's rules on moving prices, webhooks to
receivers on loopback, the delivery loop, and the accounting of what fired and what was delivered.

Set up (``Alerting.running``): the user, a self-signed certificate for the receivers (production
delivers over https only; the delivery loop trusts that certificate alone, ``SSL_CERT_FILE``), a
receiver process (``bench/soak_load.py receiver``) with three webhooks on it (``/ok`` flaky,
``/gone`` refusing, ``/down`` failing), the delivery loop (``bench/delivery_loop.py``, through
the load balancer) and a WebSocket subscriber to the user's ``alerts`` channel. The gateways take
loopback targets because ``GPUBROKER_WEBHOOK_ALLOWED_NETWORKS`` says so (``environment``), the
setting tests and private deployments use; their retry window is shortened so that a failing
receiver's deliveries are dead-lettered within the run.

Rules (``make_rules``), once prices move: for two providers, a ``below`` and an ``above`` rule
at the midpoint of one offer's two alternating prices, so that each move of that offer crosses
one of them.

Accounting (``account``): every price update that crosses a rule, written once the rule was
active on both gateways, fired that rule exactly once (``gpubroker.price-alerts``) and nothing
else fired it; the subscriber received every alert unless it was away when it fired; every
webhook got one delivery per alert, and every delivery ended delivered (the receiver got it,
signed with the webhook's secret), failed for good or dead-lettered, each with its reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.cluster import BIN, Process, api_key, call_json
from bench.servers import ROOT, free_port
from gpubroker.core import events

RELOAD_S = 5.0
"""The notifier's re-reading of rules on the other instance (``realtime.notify.RELOAD_S``)."""
ACTIVE_AFTER_S = RELOAD_S + 3.0
"""A rule counts as active on both gateways this long after it was made."""
HOOKS = ("ok", "gone", "down")
"""The receiver's paths: see ``bench/soak_load.py``'s ``RECEIVER_ANSWERS``."""
SETTLE_S = 90.0
"""How long, after the workers stop, the deliveries may take to end (the retries of /ok and /down)."""


def environment() -> dict[str, str]:
    """The gateways' settings for loopback webhook targets and a retry window the run outlasts."""
    return {
        "GPUBROKER_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "GPUBROKER_WEBHOOK_RETRY_INITIAL_S": "1",
        "GPUBROKER_WEBHOOK_RETRY_WINDOW_S": "10",
    }


@dataclass(frozen=True)
class Rule:
    alert_id: int
    provider: str
    direction: str
    price: Decimal
    active_at: float

    def crossed_by(self, update: events.PriceUpdate) -> bool:
        """As ``realtime.rules``: from at least the price to under it, or from at most to over."""
        if update.provider != self.provider:
            return False
        if self.direction == "below":
            return update.old_price >= self.price > update.new_price
        return update.old_price <= self.price < update.new_price


@dataclass
class AlertAccount:
    """What the rules and webhooks came to; every list and count of problems should be empty or 0."""

    expected: int = 0
    """Crossing updates written while the rules were active."""
    fired: int = 0
    """Alerts on the topic for the rules (duplicates included)."""
    duplicated: int = 0
    """Alerts on the topic twice: the notifier hands alerts on at least once, so a record handled
    but not yet committed when its partition moves to another instance (a gateway stopping or
    joining) fires again. Reported, not counted as a problem: its webhook deliveries keep their
    ids, so receivers get one each (``per_alert``)."""
    missing: int = 0
    unexpected: int = 0
    received: int = 0
    """Alerts the user's WebSocket subscriber received."""
    received_lost: int = 0
    """Fired alerts the subscriber missed while it was connected."""
    deliveries: dict[str, int] = field(default_factory=dict)
    """Per webhook, deliveries made (distinct ids)."""
    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    """Per webhook, how its deliveries ended: ``delivered``, ``failed: <status>``, ``dead-lettered: <status>``
    (the receiver's last answer)."""
    unresolved: list[str] = field(default_factory=list)
    """Deliveries that ended otherwise, or not at all, or without the receiver having them."""
    per_alert: list[str] = field(default_factory=list)
    """Webhooks whose deliveries are not exactly one per fired alert."""
    bad_signatures: int = 0

    @property
    def problems(self) -> list[str]:
        found = [
            f"{name}: {count}"
            for name, count in (
                ("missing alerts", self.missing),
                ("unexpected alerts", self.unexpected),
                ("alerts lost to the subscriber", self.received_lost),
                ("bad signatures", self.bad_signatures),
            )
            if count
        ]
        return found + self.unresolved[:5] + self.per_alert


class Alerting:
    """The user, receiver, webhooks, delivery loop and alert subscriber of one soak run."""

    def __init__(self, env: Mapping[str, str], scratch: Path, log: Callable[[str], Path]) -> None:
        self.env = dict(env)
        self.scratch = scratch
        self.log = log
        self.url = ""
        self.key = ""
        self.hooks: dict[str, dict[str, Any]] = {}
        """Per receiver path: the webhook as made (``id``, ``secret``)."""
        self.rules: list[Rule] = []
        self.states: dict[str, tuple[str, str]] = {}
        """Per delivery id: its status and reason, from the API at the end."""
        self.processes: list[Process] = []
        self.cert = scratch / "receiver-cert.pem"
        """The receivers' certificate, the one the deliveries trust."""
        self.service_token = ""
        """The platform service token the deliveries are made with."""

    @contextmanager
    def running(self, url: str, *, delivery_loop: bool = True) -> Iterator[None]:
        """Everything set up against the gateway(s) at ``url``; stopped at the end. Without
        ``delivery_loop``, something else delivers (Airflow's ``webhook_delivery``, ``--airflow``)."""
        self.url = url
        self.key = api_key(self.env, url, "enterprise")
        cert, key = self._certificate()
        port = free_port()
        load = [sys.executable, str(ROOT / "bench" / "soak_load.py")]
        receiver = [*load, "receiver", "--port", str(port), "--cert", str(cert), "--cert-key", str(key)]
        self._start("webhook-receiver", [*receiver, "--out", str(self.scratch / "webhook-receiver.jsonl")], self.env)
        try:
            for path in HOOKS:
                body = {"url": f"https://127.0.0.1:{port}/{path}", "events": ["price.alert"]}
                self.hooks[path] = self._call("POST", "/api/v2/webhooks", body)
            self.service_token = subprocess.run(
                [BIN / "gpubroker", "auth", "service-token", "airflow", "--ttl-s", "7200"],
                env=self.env, check=True, capture_output=True, text=True, timeout=60,
            ).stdout.strip()  # fmt: skip
            if delivery_loop:
                delivery_env = {**self.env, "GPUBROKER_SERVICE_TOKEN": self.service_token, "SSL_CERT_FILE": str(cert)}
                group = f"soak-{time.time_ns()}"
                loop = [sys.executable, str(ROOT / "bench" / "delivery_loop.py"), "--gateway", url, "--group", group]
                self._start("delivery-loop", loop, delivery_env)
            subscriber = [*load, "ws", "--gateways", url, "--key", self.key, "--channels", "alerts"]
            self._start("alerts-ws", [*subscriber, "--out", str(self.scratch / "alerts-ws.jsonl")], self.env)
            yield
        finally:
            self._remove()
            for process in reversed(self.processes):
                process.stop()

    def _remove(self) -> None:
        """The rules and webhooks go at the end, so that they do not fire in later runs on the
        same services (nothing else removes them)."""
        with contextlib.suppress(OSError):
            for rule in self.rules:
                self._call("DELETE", f"/api/v2/alerts/{rule.alert_id}")
            for hook in self.hooks.values():
                self._call("DELETE", f"/api/v2/webhooks/{hook['id']}")

    def _start(self, name: str, command: list[str], env: Mapping[str, str]) -> None:
        process = Process(name, command, env, self.log(name))
        process.start()
        self.processes.append(process)

    def _certificate(self) -> tuple[Path, Path]:
        cert, key = self.cert, self.scratch / "receiver-key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-days", "1", "-subj", "/CN=soak-receiver", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return cert, key

    def _call(self, method: str, path: str, body: object = None) -> Any:
        return call_json(self.url + path, body, {"X-API-Key": self.key}, method)

    def make_rules(self, updates: list[events.PriceUpdate], avoid: set[str]) -> None:
        """A ``below`` and an ``above`` rule for two providers (not in ``avoid``), each at the
        midpoint of one offer's two prices."""
        chosen: dict[str, events.PriceUpdate] = {}
        for update in updates:
            if update.provider not in avoid and update.new_price >= Decimal("0.1"):
                chosen.setdefault(update.provider, update)
        for provider in sorted(chosen)[:2]:
            update = chosen[provider]
            price = ((update.old_price + update.new_price) / 2).quantize(Decimal("0.000001"))
            for direction in ("below", "above"):
                body = {"filters": {"provider": [provider]}, "direction": direction, "price": str(price)}
                made = self._call("POST", "/api/v2/alerts", body)
                self.rules.append(Rule(int(made["id"]), provider, direction, price, time.time() + ACTIVE_AFTER_S))

    def settle(self) -> None:
        """Wait (at most ``SETTLE_S``) until no delivery is pending, then keep how each ended."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            rows = [row for hook in self.hooks.values() for row in self._deliveries(int(hook["id"]))]
            if time.monotonic() > deadline or not any(row["status"] == "pending" for row in rows):
                break
            time.sleep(2)
        for row in rows:
            last = row["attempts"][-1] if row["attempts"] else {}
            reason = str(last.get("status_code") or last.get("error") or "")
            self.states[row["delivery_id"]] = (row["status"], reason)

    def _deliveries(self, webhook_id: int) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/v2/webhooks/{webhook_id}/deliveries?limit=500")  # type: ignore[no-any-return]


def account(
    alerting: Alerting,
    updates: list[tuple[events.PriceUpdate, float]],
    alerts: list[tuple[events.PriceAlert, float]],
    deliveries: list[events.WebhookDelivery],
    dead: list[events.WebhookDelivery],
    subscriber: list[dict[str, object]],
    receiver: list[dict[str, object]],
    away: Callable[[float], bool],
) -> AlertAccount:
    """``away(t)``: whether the alert subscriber was told it may miss what was written at ``t``."""
    result = AlertAccount()
    ours = {rule.alert_id: rule for rule in alerting.rules}
    expected, possible = set(), set()
    for update, written in updates:
        for rule in alerting.rules:
            if rule.crossed_by(update):
                fired = (rule.alert_id, update.offer_id, update.at.isoformat())
                possible.add(fired)
                if written >= rule.active_at:
                    expected.add(fired)
    fired_at: dict[tuple[int, str, str], float] = {}
    counts: Counter[tuple[int, str, str]] = Counter()
    for alert, written in alerts:
        if alert.kind == "rule" and alert.alert_id in ours:
            fired = (alert.alert_id, alert.offer_id, alert.at.isoformat())
            counts[fired] += 1
            fired_at.setdefault(fired, written)
    result.expected, result.fired = len(expected), sum(counts.values())
    result.duplicated = result.fired - len(counts)
    result.missing = len(expected - counts.keys())
    result.unexpected = len(counts.keys() - possible)

    seen = {(int(line["alert_id"]), str(line["offer_id"]), str(line["at"])) for line in subscriber}  # type: ignore[call-overload]
    result.received = len(seen & counts.keys())
    result.received_lost = sum(1 for fired, at in fired_at.items() if fired not in seen and not away(at))

    by_hook = {int(hook["id"]): path for path, hook in alerting.hooks.items()}
    made: dict[str, set[str]] = defaultdict(set)
    for delivery in deliveries:
        if delivery.webhook_id in by_hook:
            made[by_hook[delivery.webhook_id]].add(delivery.delivery_id)
    dead_ids = {delivery.delivery_id for delivery in dead}
    got: dict[str, list[dict[str, object]]] = defaultdict(list)
    for line in receiver:
        got[str(line["delivery_id"])].append(line)
    for path, hook in alerting.hooks.items():
        result.deliveries[path] = len(made[path])
        if len(made[path]) != len(counts):
            result.per_alert.append(f"{path}: {len(made[path])} deliveries for {len(counts)} alerts")
        outcomes: Counter[str] = Counter()
        for delivery_id in made[path]:
            # The receiver's answers and the dead-letter topic say how a delivery ended; the API's
            # record, where it still lists the delivery (its newest 500), must say the same.
            answered = [int(line["status"]) for line in got.get(delivery_id, [])]  # type: ignore[call-overload]
            last = str(answered[-1]) if answered else ""
            if 200 in answered:
                ended, status = "delivered", "delivered"
            elif delivery_id in dead_ids and last:
                ended, status = f"dead-lettered: {last}", "exhausted"
            elif last and int(last) < 500 and int(last) not in (408, 429):
                ended, status = f"failed: {last}", "failed"
            else:
                ended, status = "", ""
            recorded, _ = alerting.states.get(delivery_id, (status, ""))
            if ended and recorded == status:
                outcomes[ended] += 1
            else:
                result.unresolved.append(f"{path} {delivery_id}: recorded {recorded}, receiver answered {answered}")
        result.outcomes[path] = outcomes
        secret = str(hook["secret"]).encode()
        for delivery_id in made[path]:
            for line in got.get(delivery_id, []):
                if not _signed(secret, str(line["signature"]), str(line["body"])):
                    result.bad_signatures += 1
    return result


def _signed(secret: bytes, signature: str, body: str) -> bool:
    """``t=<time>,v1=<hex HMAC-SHA256 of "<time>.<body>">``, as a receiver checks it."""
    parts = dict(part.split("=", 1) for part in signature.split(",") if "=" in part)
    expected = hmac.new(secret, f"{parts.get('t', '')}.{body}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))
