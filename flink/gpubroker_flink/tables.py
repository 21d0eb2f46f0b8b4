"""The Kafka tables the analyses read and write, as Flink SQL DDL.

Every table keeps the record key and value as raw strings: the update's JSON is decoded by
``decode_price_update`` (so a malformed record can be routed to the dead-letter topic with the
reason instead of failing the job or vanishing), and what the jobs write is built with
``JSON_OBJECT`` in the envelope the product reads.

Event time is the update's ``at``. It is needed in the source table itself, where the watermark
is declared, so it is read there in SQL: ISO 8601 with an offset (``+00:00``, ``-05:00`` or
``Z``) and an optional fraction. A record whose ``at`` cannot be read is malformed and goes to
the dead-letter topic; its place in event time is then the Kafka record's timestamp.
"""

from __future__ import annotations

from gpubroker_flink.params import JobParams
from gpubroker_flink.records import ISO_AT

START_MODES = {"group": "group-offsets", "earliest": "earliest-offset", "latest": "latest-offset"}


def _at_millis(at: str) -> str:
    """Epoch milliseconds of the ISO 8601 string expression ``at`` (NULL when unreadable)."""
    seconds = f"UNIX_TIMESTAMP(SUBSTR({at}, 1, 19), 'yyyy-MM-dd''T''HH:mm:ss')"
    millis = f"CAST(RPAD(COALESCE(REGEXP_EXTRACT({at}, '^.{{19}}\\.([0-9]{{1,3}})', 1), ''), 3, '0') AS BIGINT)"
    sign = f"CASE WHEN SUBSTR({at}, CHAR_LENGTH({at}) - 5, 1) = '-' THEN -1 ELSE 1 END"
    hours = f"CAST(SUBSTR({at}, CHAR_LENGTH({at}) - 4, 2) AS BIGINT)"
    minutes = f"CAST(SUBSTR({at}, CHAR_LENGTH({at}) - 1, 2) AS BIGINT)"
    offset = f"CASE WHEN {at} LIKE '%Z' THEN 0 ELSE {sign} * ({hours} * 60 + {minutes}) END"
    shape = f"REGEXP({at}, '^{ISO_AT.pattern}$')"
    return f"CASE WHEN {shape} THEN {seconds} * 1000 + {millis} - ({offset}) * 60000 END"


def source(params: JobParams) -> str:
    at = "JSON_VALUE(`v`, '$.at')"
    return f"""
CREATE TABLE price_updates (
    `k` STRING,
    `v` STRING,
    `kafka_time` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
    `kafka_partition` INT METADATA FROM 'partition' VIRTUAL,
    `kafka_offset` BIGINT METADATA FROM 'offset' VIRTUAL,
    `proc` AS PROCTIME(),
    `rowtime` AS COALESCE(TO_TIMESTAMP_LTZ({_at_millis(at)}, 3), `kafka_time`),
    WATERMARK FOR `rowtime` AS `rowtime` - INTERVAL '{params.lateness_s}' SECOND({len(str(params.lateness_s))})
) WITH (
    'connector' = 'kafka',
    'topic' = '{params.updates_topic}',
    'properties.bootstrap.servers' = '{params.bootstrap}',
    'properties.group.id' = '{params.name}',
    'properties.isolation.level' = 'read_committed',
    'properties.auto.offset.reset' = 'latest',
    'scan.startup.mode' = '{START_MODES[params.start]}',
    'scan.watermark.idle-timeout' = '{params.idle_s}s',
    'key.format' = 'raw',
    'key.fields' = 'k',
    'value.format' = 'raw',
    'value.fields-include' = 'EXCEPT_KEY'
)"""


def sink(table: str, topic: str, params: JobParams) -> str:
    """A topic written exactly once: in Kafka transactions committed at each checkpoint."""
    return f"""
CREATE TABLE {table} (
    `k` STRING,
    `v` STRING
) WITH (
    'connector' = 'kafka',
    'topic' = '{topic}',
    'properties.bootstrap.servers' = '{params.bootstrap}',
    'properties.transaction.timeout.ms' = '{params.transaction_timeout_s * 1000}',
    'sink.delivery-guarantee' = 'exactly-once',
    'sink.transactional-id-prefix' = '{params.name}-{table}',
    'key.format' = 'raw',
    'key.fields' = 'k',
    'value.format' = 'raw',
    'value.fields-include' = 'EXCEPT_KEY'
)"""


def plain(decimal: str) -> str:
    """SQL for a DECIMAL as the product writes prices: a string with no exponent and no
    trailing zeros (``20``, ``2.5``, ``0.0001``)."""
    return f"REGEXP_EXTRACT(CAST({decimal} AS STRING), '^(-?[0-9]+(\\.[0-9]*[1-9])?)', 1)"


def iso(timestamp: str) -> str:
    """SQL for a TIMESTAMP_LTZ as ISO 8601 in UTC (the jobs' session time zone)."""
    return f"DATE_FORMAT({timestamp}, 'yyyy-MM-dd''T''HH:mm:ss.SSS''+00:00''')"
