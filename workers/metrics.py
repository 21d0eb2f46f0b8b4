"""The worker's Prometheus metrics. Labels are provider names only: never credentials."""

from prometheus_client import Counter, Gauge, Histogram

POLLS = Counter("gpubroker_worker_polls_total", "Provider polls by outcome.", ["provider", "outcome"])
POLL_SECONDS = Histogram(
    "gpubroker_worker_poll_seconds",
    "Duration of successful provider polls.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
OFFERS = Gauge("gpubroker_worker_offers", "Offers in the provider's last published snapshot.", ["provider"])
PUBLISHED = Counter("gpubroker_worker_published_total", "Records published to the bus.", ["provider", "topic"])
REJECTED = Counter(
    "gpubroker_worker_rejected_records_total", "Provider records that could not be normalised.", ["provider"]
)
QUARANTINED = Counter(
    "gpubroker_worker_quarantined_offers_total",
    "Offers the price sanity guard held out of ranking (counted each poll they are held).",
    ["provider"],
)
CIRCUIT_STATE = Gauge(
    "gpubroker_worker_circuit_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.", ["provider"]
)
CIRCUIT_TRANSITIONS = Counter(
    "gpubroker_worker_circuit_transitions_total", "Circuit breaker transitions by new state.", ["provider", "state"]
)
OUTBOX = Gauge("gpubroker_worker_outbox_records", "Records waiting in the outbox for the bus.", ["provider"])
OUTBOX_OLDEST = Gauge(
    "gpubroker_worker_outbox_oldest_seconds", "How long the oldest record in the outbox has waited.", ["provider"]
)
