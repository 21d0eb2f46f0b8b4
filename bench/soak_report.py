"""The soak's report: ``docs/soak.md`` (per phase, the accounting, the alert rules and webhooks)
and its plots of throughput and latency with the fault windows shaded (``bench/soak.py``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from bench.market import Chaos
from bench.soak_accounting import FLAG_DELAY_S, Result, Window, failing
from bench.soak_airflow import AirflowAccount
from bench.soak_alerts import AlertAccount
from bench.soak_flink import LATENESS_S, FlinkAccount
from gpubroker.core import events


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


def _chaos_text(chaos: Chaos) -> str:
    return (
        f"{', '.join(chaos.bursts)} answering 502 to everything for {chaos.burst_s:g} s of every {chaos.period_s:g} s;"
        f" {', '.join(chaos.slow)} answering {chaos.slow_s:g} s late; {', '.join(chaos.malformed)} adding a"
        ' malformed record (a real one with every number replaced by `"n/a"`) to every answer'
    )


def markdown(result: Result, command: str, minutes: float, chaos: Chaos) -> str:
    lines = [
        "# Soak: the whole system under load while things break",
        "",
        f"Produced by `{command}` ({minutes:g} minutes, {len(result.windows) - 1} faults) on a 2-core machine shared",
        "with other work: trust the shape and the zeros, not the absolute latencies.",
        "",
        "Topology: every installed provider replayed on loopback with prices moving on every poll",
        "(`bench/market.py`), one `gpubroker worker` process per provider in two pools (each its own data",
        "directory, as on two nodes), two `gpubroker serve` gateways in production mode on Kafka, Redis,",
        "PostgreSQL and OpenBao (`scripts/services`) behind a round-robin TCP load balancer",
        "(`bench/balancer.py`), and clients in processes of their own (`bench/soak_load.py`): anonymous",
        "reads through the load balancer and keyed reads spreading themselves over both instances; an SSE",
        "subscriber pinned to each instance, one roaming through the load balancer and one between the",
        "instances; a WebSocket subscriber pinned to the first instance and one through the load balancer.",
        "Prices move where a provider's answer carries them as numbers (20 of the 26 plugins); the others",
        "price from the plugin's own list, or as strings under names that do not say price, and change",
        "nothing. The Flink job runs beside them with `--flink`; with `--airflow`, Airflow's scheduler runs the",
        "`webhook_delivery` and `plugin_health` DAGs against the load balancer, and delivers the webhooks;",
        "without it, the code the delivery DAG's task runs does, in a process of its own (`bench/delivery_loop.py`).",
        "",
        f"Besides the faults, all along: {_chaos_text(chaos)}.",
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
    stretches = failing(result.provider_events)
    lines += [
        "",
        "An update a subscriber missed counts as announced when its stream told it of a gap at that place:",
        "after the update of the same offer it received before, and before the one it received after; a",
        "gap stands for no more updates than the events it counted. A WebSocket does not resume, so being",
        "subscribed again after losing its connection announces any number.",
        "",
        f"Reads: {len(result.reads)}, by status: {', '.join(f'{s}: {n}' for s, n in sorted(statuses.items()))};"
        f" undocumented failures: {len(result.undocumented)}.",
        "",
        "Misbehaving providers: malformed records sent / rejected by the workers (their `poll.succeeded`"
        " events): "
        + ", ".join(f"{name} {sent} / {result.rejected[name]}" for name, sent in result.malformed_served.items())
        + f"; offers published from a malformed record: {len(result.leaked)}."
        f" Stretches in which a provider's last poll had failed: {len(stretches)}"
        f" ({', '.join(f'{name}: {n}' for name, n in sorted(Counter(f[0] for f in stretches).items())) or 'none'});"
        f" reads answered 200 during one (from {FLAG_DELAY_S:g} s after the gateways could read the failure: once"
        " Kafka was back, for one reported while it was away) that did not flag"
        f" the provider as not healthy or stale: {len(result.unflagged)}.",
        "",
        *_alerts_section(result.alerts, "Airflow's `webhook_delivery` DAG" if result.airflow else "the delivery loop"),
        "![throughput](soak-throughput.png)",
        "",
        "![latency](soak-latency.png)",
        "",
        *_flink_section(result.flink),
        *_airflow_section(result.airflow),
        "## Not in the short variant",
        "",
        "The short variant in the test suite (`tests/integration/test_soak.py`) leaves the Flink job and",
        "Airflow out, to keep its time down: its webhooks are delivered by `bench/delivery_loop.py`.",
        "",
    ]
    return "\n".join(lines)


def _flink_section(flink: FlinkAccount | None) -> list[str]:
    if flink is None:
        return ["## Stream analytics", "", "Not run (`--flink` not given).", ""]
    return [
        "## Stream analytics",
        "",
        f"The Flink job (`scripts/services up flink`; lateness {LATENESS_S} s) on the product's topics"
        f" from before the workers started: {flink.state} at the end, {flink.restarts} restarts."
        f" Closed 1-minute windows of a GPU type over every continent: {flink.windows}; whose count is"
        f" the number of updates published in them: {flink.exact}; emitted twice: {flink.duplicated}.",
        "",
        *[f"- {line}" for line in flink.differing[:10]],
        *([""] if flink.differing else []),
    ]


def _airflow_section(airflow: AirflowAccount | None) -> list[str]:
    if airflow is None:
        return ["## Airflow", "", "Not run (`--airflow` not given).", ""]
    runs = "; ".join(
        f"`{dag}`: " + (", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none")
        for dag, states in sorted(airflow.runs.items())
    )
    return [
        "## Airflow",
        "",
        "Airflow's scheduler (`scripts/services up airflow`, LocalExecutor) ran the DAGs against the load"
        f" balancer. Runs during the soak, by state: {runs}. Task instances failed after their retries:"
        f" {len(airflow.failed_tasks)}.",
        "",
        *[f"- {task}" for task in airflow.failed_tasks[:10]],
        *([""] if airflow.failed_tasks else []),
    ]


def _alerts_section(alerts: AlertAccount, deliverer: str) -> list[str]:
    lines = [
        "## Alert rules and webhooks",
        "",
        "An Enterprise user's `below` and `above` rules on two providers' prices, and three webhooks to a",
        "receiver on loopback over https (`/ok` answers 503 to every fifth request, `/gone` 410, `/down`",
        f"503), delivered by {deliverer} through the load balancer; the gateways' retry window is",
        "10 s, so that `/down`'s deliveries are dead-lettered within the run (`bench/soak_alerts.py`).",
        "",
        f"Crossing updates while the rules were active: {alerts.expected}; alerts fired: {alerts.fired}"
        f" (duplicated {alerts.duplicated}, missing {alerts.missing}, unexpected {alerts.unexpected});"
        f" received by the user's WebSocket subscriber: {alerts.received}, missed while connected:"
        f" {alerts.received_lost}.",
        "",
        "| webhook | deliveries | how they ended |",
        "|---|---|---|",
    ]
    for path, made in alerts.deliveries.items():
        ended = ", ".join(f"{outcome}: {n}" for outcome, n in sorted(alerts.outcomes[path].items())) or "-"
        lines.append(f"| /{path} | {made} | {ended} |")
    lines += [
        "",
        f"Deliveries ended otherwise or not at all: {len(alerts.unresolved)}; webhooks without exactly one"
        f" delivery per alert: {len(alerts.per_alert)}; deliveries whose signature did not verify:"
        f" {alerts.bad_signatures}.",
        "",
    ]
    return lines


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
