"""The analyses, each one INSERT over the decoded updates (the ``updates`` view, see ``job``).

- **significant change**: an offer's price against the last price seen for it (keyed state:
  ``LAG`` over the offer's updates in arrival order, which is the order the worker published
  them, one partition per offer), or the update's own ``old_price`` for an offer not seen yet;
  a move of *more* than ``change_pct`` percent is an alert. Exact decimal arithmetic: a move of
  exactly 5% is not more than 5%.
- **anomaly**: an update's per-GPU price (so an 8-GPU box compares with a 1-GPU one) against
  the ``anomaly_window`` updates of the same GPU type before it: mean and standard deviation of
  those (the current one left out), and an alert when ``|z|`` exceeds ``z_score``, once at least
  ``anomaly_min_samples`` prices came before it (a new GPU type does not fire on its first prices).
- **market**: 1-minute tumbling windows on event time (the update's ``at``), per GPU type and
  per GPU type and continent: count, min, mean and max per-GPU price. A window is emitted, once,
  when the watermark passes its end; the watermark trails the newest event time by
  ``lateness_s``, so an update up to that late is still counted and a later one is dropped.
- **dead letters**: every record that does not decode goes to the dead-letter topic with the
  reason, the topic, partition and offset it came from, and the job goes on.

Alerts are ``price-alert/1`` keyed by offer id; aggregates ``price-aggregate/1`` keyed by
``<gpu type>|<continent or *>``. Neither reads the alerts topic, so users' own ``rule`` alerts
published there by the gateway never reach an analysis.
"""

from __future__ import annotations

from gpubroker.core import events
from gpubroker_flink.params import JobParams
from gpubroker_flink.tables import iso, plain

NO_USER = "KEY 'user_id' VALUE CAST(NULL AS INT), KEY 'alert_id' VALUE CAST(NULL AS INT)"


def _alert(kind: str, old_price: str, detail: str) -> str:
    return f"""JSON_OBJECT(
        KEY 'schema' VALUE '{events.PRICE_ALERT_SCHEMA}', KEY 'kind' VALUE '{kind}',
        KEY 'provider' VALUE provider, KEY 'offer_id' VALUE offer_id, KEY 'gpu_type' VALUE gpu_type,
        KEY 'region' VALUE region, KEY 'old_price' VALUE {plain(old_price)},
        KEY 'new_price' VALUE {plain("new_price")}, KEY 'at' VALUE `at`,
        KEY 'detail' VALUE {detail}, {NO_USER} NULL ON NULL)"""


def significant_change(params: JobParams) -> str:
    threshold = f"CAST({params.change_pct} AS DECIMAL(20, 6))"
    change = "CAST(ROUND((new_price - last_price) * 100 / last_price, 2) AS DOUBLE)"
    detail = f"JSON_OBJECT(KEY 'change_pct' VALUE {change}, KEY 'threshold_pct' VALUE CAST({threshold} AS DOUBLE))"
    return f"""
INSERT INTO price_alerts
SELECT offer_id, {_alert("significant_change", "last_price", detail)}
FROM (
    SELECT *, COALESCE(LAG(new_price) OVER (PARTITION BY offer_id ORDER BY proc), old_price) AS last_price
    FROM updates
)
WHERE ABS(new_price - last_price) * 100 > {threshold} * last_price"""


def anomaly(params: JobParams) -> str:
    # Sums over the window include the current price; it is taken out again to compare the
    # price with the ones before it.
    mean = "(s - p) / (n - 1)"
    variance = f"((q - p * p) / (n - 1) - {mean} * {mean})"
    detail = f"""JSON_OBJECT(
        KEY 'z_score' VALUE ROUND(z, 2), KEY 'per_gpu_price' VALUE ROUND(p, 6),
        KEY 'mean_per_gpu_price' VALUE ROUND(mean, 6), KEY 'stddev' VALUE ROUND(stddev, 6),
        KEY 'samples' VALUE n - 1, KEY 'threshold' VALUE CAST({params.z_score} AS DOUBLE))"""
    return f"""
INSERT INTO price_alerts
SELECT offer_id, {_alert("anomaly", "old_price", detail)}
FROM (
    SELECT *, (p - mean) / stddev AS z
    FROM (
        SELECT *, {mean} AS mean, SQRT(GREATEST({variance}, 0.0)) AS stddev
        FROM (
            SELECT *,
                CAST(new_price AS DOUBLE) / gpu_count AS p,
                COUNT(*) OVER w AS n,
                SUM(CAST(new_price AS DOUBLE) / gpu_count) OVER w AS s,
                SUM(POWER(CAST(new_price AS DOUBLE) / gpu_count, 2)) OVER w AS q
            FROM updates
            WHERE gpu_type IS NOT NULL AND gpu_count IS NOT NULL
            WINDOW w AS (
                PARTITION BY gpu_type ORDER BY proc ROWS BETWEEN {params.anomaly_window} PRECEDING AND CURRENT ROW
            )
        )
        WHERE n - 1 >= {params.anomaly_min_samples}
    )
    WHERE stddev > 0
)
WHERE ABS(z) > {params.z_score}"""


def market(params: JobParams) -> str:
    per_gpu = "CAST(new_price / gpu_count AS DECIMAL(20, 6))"
    continent = "CASE WHEN GROUPING(continent) = 1 THEN CAST(NULL AS STRING) ELSE continent END"
    aggregate = f"""JSON_OBJECT(
        KEY 'schema' VALUE '{events.PRICE_AGGREGATE_SCHEMA}', KEY 'gpu_type' VALUE gpu_type,
        KEY 'continent' VALUE {continent},
        KEY 'window_start' VALUE {iso("window_start")}, KEY 'window_end' VALUE {iso("window_end")},
        KEY 'count' VALUE COUNT(*), KEY 'min' VALUE {plain(f"MIN({per_gpu})")},
        KEY 'mean' VALUE {plain(f"CAST(SUM({per_gpu}) / COUNT(*) AS DECIMAL(20, 6))")},
        KEY 'max' VALUE {plain(f"MAX({per_gpu})")} NULL ON NULL)"""
    return f"""
INSERT INTO price_aggregates
SELECT gpu_type || '|' || COALESCE({continent}, '*'), {aggregate}
FROM TABLE(TUMBLE(TABLE updates, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE))
WHERE gpu_type IS NOT NULL AND gpu_count IS NOT NULL
GROUP BY window_start, window_end, GROUPING SETS ((gpu_type), (gpu_type, continent))"""


def dead_letters(params: JobParams) -> str:
    letter = f"""JSON_OBJECT(
        KEY 'schema' VALUE 'dead-letter/1', KEY 'topic' VALUE '{params.updates_topic}',
        KEY 'partition' VALUE kafka_partition, KEY 'offset' VALUE kafka_offset, KEY 'key' VALUE k,
        KEY 'value' VALUE v, KEY 'reason' VALUE error, KEY 'job' VALUE '{params.name}' NULL ON NULL)"""
    return f"""
INSERT INTO dead_letters
SELECT k, {letter}
FROM decoded
WHERE error IS NOT NULL"""


INSERTS = {"significant_change": significant_change, "anomaly": anomaly, "market": market}
