"""What a submitted analytics job is told: where its topics are, and each analysis's knobs.

The same arguments are read by ``gpubroker-flink submit`` (on the client) and by the job
program Flink runs (``gpubroker_flink.job``), which gets them passed through.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from decimal import Decimal

from gpubroker.core import events

ANALYSES = ("significant_change", "anomaly", "market")
STARTS = ("group", "earliest", "latest")


@dataclass(frozen=True)
class JobParams:
    bootstrap: str
    name: str
    analyses: tuple[str, ...]
    updates_topic: str
    alerts_topic: str
    aggregates_topic: str
    dead_letter_topic: str
    start: str
    change_pct: Decimal
    z_score: float
    anomaly_window: int
    anomaly_min_samples: int
    lateness_s: int
    idle_s: int
    checkpoint_s: float
    transaction_timeout_s: int

    def argv(self) -> list[str]:
        """These parameters as the job program's command line."""
        return [
            f"--bootstrap={self.bootstrap}",
            f"--name={self.name}",
            f"--analyses={','.join(self.analyses)}",
            f"--updates-topic={self.updates_topic}",
            f"--alerts-topic={self.alerts_topic}",
            f"--aggregates-topic={self.aggregates_topic}",
            f"--dead-letter-topic={self.dead_letter_topic}",
            f"--start={self.start}",
            f"--change-pct={self.change_pct}",
            f"--z-score={self.z_score}",
            f"--anomaly-window={self.anomaly_window}",
            f"--anomaly-min-samples={self.anomaly_min_samples}",
            f"--lateness-s={self.lateness_s}",
            f"--idle-s={self.idle_s}",
            f"--checkpoint-s={self.checkpoint_s}",
            f"--transaction-timeout-s={self.transaction_timeout_s}",
        ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--bootstrap", required=True, help="Kafka brokers, host:port[,host:port]")
    add("--name", default="gpubroker-analytics", help="job name; also the consumer group and transaction prefix")
    add("--analyses", type=_analyses, default=ANALYSES, help=f"comma-separated, of: {', '.join(ANALYSES)}")
    add("--updates-topic", default=events.PRICE_UPDATES)
    add("--alerts-topic", default=events.PRICE_ALERTS)
    add("--aggregates-topic", default=events.PRICE_AGGREGATES)
    add("--dead-letter-topic", default=events.dead_letter_topic(events.PRICE_UPDATES))
    add(
        "--start",
        choices=STARTS,
        default="group",
        help="where a job with no checkpoint starts: the group's committed offsets (new updates when it "
        "has none), the earliest or the latest offsets",
    )
    add("--change-pct", type=_positive_decimal, default=Decimal(5), help="significant change: a move of MORE than this")
    add("--z-score", type=_positive_float, default=3.0, help="anomaly: |z| above this")
    add("--anomaly-window", type=_positive_int, default=100, help="anomaly: prices of the GPU type compared with")
    add(
        "--anomaly-min-samples",
        type=_positive_int,
        default=20,
        help="anomaly: prices of the GPU type seen before any can be an anomaly",
    )
    add("--lateness-s", type=_positive_int, default=10, help="market: how late (event time) an update is still counted")
    add("--idle-s", type=_positive_int, default=5, help="a partition with no update for this long holds no window back")
    add("--checkpoint-s", type=_positive_float, default=1.0, help="checkpoint interval; alerts are visible after each")
    add(
        "--transaction-timeout-s",
        type=_positive_int,
        default=900,
        help="Kafka transaction timeout: longer than a restart takes, at most the broker's maximum (15 min)",
    )


def parse(argv: list[str]) -> JobParams:
    parser = argparse.ArgumentParser(prog="gpubroker_flink.job")
    add_arguments(parser)
    return from_namespace(parser.parse_args(argv))


def from_namespace(ns: argparse.Namespace) -> JobParams:
    return JobParams(
        ns.bootstrap,
        ns.name,
        tuple(ns.analyses),
        ns.updates_topic,
        ns.alerts_topic,
        ns.aggregates_topic,
        ns.dead_letter_topic,
        ns.start,
        ns.change_pct,
        ns.z_score,
        ns.anomaly_window,
        ns.anomaly_min_samples,
        ns.lateness_s,
        ns.idle_s,
        ns.checkpoint_s,
        ns.transaction_timeout_s,
    )


def _analyses(text: str) -> tuple[str, ...]:
    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in ANALYSES]
    if unknown or not chosen:
        named = unknown[0] if unknown else text
        raise argparse.ArgumentTypeError(f"unknown analysis {named!r}; use {', '.join(ANALYSES)}")
    return chosen


def _positive_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _positive_float(text: str) -> float:
    return float(_positive_decimal(text))


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer: {text!r}")
    return int(text)
