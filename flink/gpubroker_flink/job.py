"""The analytics job: the program ``flink run`` executes to build and submit it.

``gpubroker-flink submit`` runs it; its arguments are ``params``'s. One job holds the chosen
analyses (all by default) over one read of the updates topic, plus the dead-letter route.

Delivery: exactly once. Checkpoints every ``checkpoint_s`` (1 s by default) hold the Kafka
offsets and the analyses' state, and every output topic is written in Kafka transactions that
commit with each checkpoint: a job restarted from its checkpoint (after a failure, or by
``submit --from``) neither loses an alert nor publishes one twice to ``read_committed``
consumers, which every consumer of the product is. An alert is therefore visible about one
checkpoint interval after its update.
"""

from __future__ import annotations

import sys

from pyflink.table import EnvironmentSettings, StatementSet, TableEnvironment

from gpubroker_flink import analyses, records, tables
from gpubroker_flink.functions import decode_price_update
from gpubroker_flink.params import JobParams, parse

FIELDS = records.Decoded._fields


def configure(env: TableEnvironment, params: JobParams) -> None:
    config = env.get_config()
    for key, value in {
        "pipeline.name": params.name,
        "table.local-time-zone": "UTC",
        "python.execution-mode": "thread",
        "execution.checkpointing.interval": f"{int(params.checkpoint_s * 1000)} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.min-pause": "100 ms",
        "pipeline.auto-watermark-interval": "1 s",
        # Per-offer and per-GPU-type state of offers that stop changing is dropped after a week.
        "table.exec.state.ttl": "7 d",
        "restart-strategy.type": "exponential-delay",
        # Optimise the decoded updates once for every analysis, so each record is decoded once.
        "table.optimizer.reuse-optimize-block-with-digest-enabled": "true",
    }.items():
        config.set(key, value)


def statements(env: TableEnvironment, params: JobParams) -> StatementSet:
    env.create_temporary_system_function("decode_price_update", decode_price_update)
    env.execute_sql(tables.source(params))
    env.execute_sql(tables.sink("price_alerts", params.alerts_topic, params))
    env.execute_sql(tables.sink("price_aggregates", params.aggregates_topic, params))
    env.execute_sql(tables.sink("dead_letters", params.dead_letter_topic, params))
    fields = ", ".join(
        f"NULLIF(d.u.`{name}`, 0) AS `{name}`" if name == "gpu_count" else f"d.u.`{name}` AS `{name}`"
        for name in FIELDS
    )
    env.execute_sql(
        f"""CREATE TEMPORARY VIEW decoded AS
        SELECT k, v, kafka_partition, kafka_offset, proc, rowtime, {fields}
        FROM (SELECT *, decode_price_update(v) AS u FROM price_updates) AS d"""
    )
    env.execute_sql(
        f"""CREATE TEMPORARY VIEW updates AS
        SELECT k, proc, rowtime, {", ".join(f"`{name}`" for name in FIELDS[1:])}
        FROM decoded WHERE error IS NULL"""
    )
    statement_set = env.create_statement_set()
    statement_set.add_insert_sql(analyses.dead_letters(params))
    for name in params.analyses:
        statement_set.add_insert_sql(analyses.INSERTS[name](params))
    return statement_set


def main(argv: list[str]) -> None:
    params = parse(argv)
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    configure(env, params)
    statements(env, params).execute()


if __name__ == "__main__":
    main(sys.argv[1:])
