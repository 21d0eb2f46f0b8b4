"""The record of webhook deliveries: what the delivery service is told to send, what it reports
back, and what follows from it (the next attempt, the dead-letter topic, disabling a webhook).

The delivery service (the ``webhook_delivery`` DAG) registers each delivery it takes from
``gpubroker.webhooks`` before sending it: a delivery already registered is not sent again from
the topic (a record the notifier made twice, or one consumed again after a restart), which is
what keeps a receiver from getting it twice. After each attempt it reports the answer; the
policy in ``core.webhook_policy`` decides between delivered, another attempt later (kept here
and handed out again by ``claim_due``), a final failure, and exhausted (after the retry window,
returned for the dead-letter topic). A webhook none of whose attempts succeeded for
``webhook_disable_after_s`` is disabled and its owner told. Everything here is synchronous ORM
work, for ``gateway.db.run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from gpubroker.core import events
from gpubroker.core.settings import Settings
from gpubroker.core.webhook_policy import RetrySchedule, outcome

CLAIM_LEASE_S = 120.0
"""A claimed delivery is not handed out again for this long: the time its attempt may take."""


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    number: int
    at: datetime
    status_code: int | None
    error_kind: str | None
    error: str | None
    latency_ms: float | None
    body: str | None = None
    """The signed request, sent with an attempt that did not deliver: kept for the next ones."""
    headers: dict[str, str] | None = None


@dataclass
class Recorded:
    """What recording attempts led to, for the caller to act on (publish, invalidate)."""

    statuses: dict[str, dict[str, Any]] = field(default_factory=dict)
    exhausted: list[events.WebhookDelivery] = field(default_factory=list)
    disabled: list[events.AccountNotice] = field(default_factory=list)


def schedule(settings: Settings) -> RetrySchedule:
    return RetrySchedule(
        settings.webhook_retry_initial_s, settings.webhook_retry_max_delay_s, settings.webhook_retry_window_s
    )


def register(deliveries: list[events.WebhookDelivery], now: datetime) -> list[dict[str, Any]]:
    """Each delivery's instruction: ``send`` (with the attempt's number) or ``skip`` (why). One
    batch is a few queries, whatever its size: the delivery service registers hundreds at once."""
    from gpubroker.gateway.models import Webhook, WebhookDelivery

    hooks = Webhook.objects.in_bulk({delivery.webhook_id for delivery in deliveries})
    unique = list({delivery.delivery_id: delivery for delivery in deliveries}.values())
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(
            [
                WebhookDelivery(
                    delivery_id=delivery.delivery_id,
                    webhook=hook,
                    event=delivery.event,
                    url=delivery.url,
                    body=delivery.body.decode(),
                    headers=delivery.headers,
                    created_at=delivery.created_at,
                    status="pending" if hook.active else "cancelled",
                    finished_at=None if hook.active else now,
                )
                for delivery in unique
                if (hook := hooks.get(delivery.webhook_id)) is not None and hook.user_id == delivery.user_id
            ],
            ignore_conflicts=True,  # registered before: the rows below say what became of them
        )
    rows = WebhookDelivery.objects.in_bulk([d.delivery_id for d in unique], field_name="delivery_id")
    answers, seen = [], set()
    for delivery in deliveries:
        row = rows.get(delivery.delivery_id)
        if delivery.delivery_id in seen:
            answers.append(_answer(delivery.delivery_id, "skip", "twice in this batch"))
        elif row is None:
            answers.append(_answer(delivery.delivery_id, "skip", "the webhook no longer exists"))
        elif row.status != "pending":
            reason = "the webhook is disabled" if row.status == "cancelled" else f"already {row.status}"
            answers.append(_answer(delivery.delivery_id, "skip", reason))
        elif row.attempts > 0:
            answers.append(_answer(delivery.delivery_id, "skip", "already attempted; retries are handed out when due"))
        else:
            answers.append(_answer(delivery.delivery_id, "send", None, 1))
        seen.add(delivery.delivery_id)
    return answers


def _answer(delivery_id: str, action: str, reason: str | None, attempt: int | None = None) -> dict[str, Any]:
    return {"delivery_id": delivery_id, "action": action, "reason": reason, "attempt": attempt}


def record(attempts: list[Attempt], settings: Settings, now: datetime) -> Recorded:
    """Record each attempt once and move its delivery (and webhook) on, in one transaction of a
    few queries for the whole batch."""
    from gpubroker.gateway.models import WebhookAttempt, WebhookDelivery

    result = Recorded()
    retry = schedule(settings)
    with transaction.atomic():
        rows = {
            row.delivery_id: row
            for row in WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("webhook")
            .filter(delivery_id__in={attempt.delivery_id for attempt in attempts})
            .order_by("pk")
        }
        hooks: dict[int, Any] = {}
        for row in rows.values():  # one object per webhook, so that its failures add up
            row.webhook = hooks.setdefault(row.webhook_id, row.webhook)
        known = set(
            WebhookAttempt.objects.filter(delivery__in=[row.pk for row in rows.values()]).values_list(
                "delivery__delivery_id", "number"
            )
        )
        new_attempts, changed = [], {}
        for attempt in attempts:
            row = rows.get(attempt.delivery_id)
            if row is None:
                result.statuses[attempt.delivery_id] = {"status": "unknown", "next_attempt_at": None}
                continue
            if (attempt.delivery_id, attempt.number) not in known:
                known.add((attempt.delivery_id, attempt.number))
                verdict = outcome(attempt.status_code, attempt.error_kind)
                new_attempts.append(
                    WebhookAttempt(
                        delivery=row,
                        number=attempt.number,
                        at=attempt.at,
                        status_code=attempt.status_code,
                        error=(attempt.error or attempt.error_kind or "")[:300] or None,
                        latency_ms=attempt.latency_ms,
                        outcome=verdict,
                    )
                )
                if attempt.body is not None and not row.body:
                    row.body, row.headers = attempt.body, attempt.headers or {}
                    WebhookDelivery.objects.filter(pk=row.pk).update(body=row.body, headers=row.headers)
                if row.status == "pending":
                    _advance(row, attempt, verdict, retry, settings, now, result)
                    changed[row.pk] = row
            result.statuses[attempt.delivery_id] = {"status": row.status, "next_attempt_at": row.next_attempt_at}
        for row in rows.values():  # a webhook disabled by this batch takes its pending deliveries along
            if not row.webhook.active and row.status == "pending":
                row.status, row.next_attempt_at, row.finished_at = "cancelled", None, now
                changed[row.pk] = row
                result.statuses[row.delivery_id] = {"status": "cancelled", "next_attempt_at": None}
        WebhookAttempt.objects.bulk_create(new_attempts, ignore_conflicts=True)
        _save(list(changed.values()))
    return result


def _advance(
    row: Any,
    attempt: Attempt,
    verdict: str,
    retry: RetrySchedule,
    settings: Settings,
    now: datetime,
    result: Recorded,
) -> None:
    row.attempts = max(row.attempts, attempt.number)
    row.first_attempt_at = row.first_attempt_at or now  # recorded seconds after it was made: the batch's time
    hook = row.webhook
    if verdict == "delivered":
        row.status, row.next_attempt_at, row.finished_at = "delivered", None, now
        if hook.failing_since is not None:
            hook.failing_since = None
            hook.save(update_fields=["failing_since"])
    else:
        due = retry.next_attempt(attempt.number, row.first_attempt_at, now) if verdict == "retry" else None
        if due is not None:
            row.next_attempt_at = due
        else:
            row.status = {"retry": "exhausted", "failed": "failed", "refused": "refused"}[verdict]
            row.next_attempt_at, row.finished_at = None, now
            if row.status == "exhausted":
                result.exhausted.append(_envelope(row))
        _note_failure(hook, settings, now, result)


STATE_FIELDS = ("status", "attempts", "first_attempt_at", "next_attempt_at", "finished_at")


def _save(rows: list[Any]) -> None:
    """Write the deliveries' new states, one UPDATE per distinct state: a batch's deliveries mostly
    end alike (delivered now, or due again at the same time), and Django's ``bulk_update`` builds
    a CASE per row and field, which cost ten times more here."""
    from gpubroker.gateway.models import WebhookDelivery

    alike: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        alike.setdefault(tuple(getattr(row, name) for name in STATE_FIELDS), []).append(row.pk)
    for values, pks in alike.items():
        WebhookDelivery.objects.filter(pk__in=pks).update(**dict(zip(STATE_FIELDS, values, strict=True)))


def _note_failure(hook: Any, settings: Settings, now: datetime, result: Recorded) -> None:
    if hook.failing_since is None:
        hook.failing_since = now
        hook.save(update_fields=["failing_since"])
        return
    if hook.active and now - hook.failing_since >= timedelta(seconds=settings.webhook_disable_after_s):
        hours = settings.webhook_disable_after_s / 3600
        hook.active = False
        hook.disabled_reason = f"every delivery failed for {hours:g} hours (since {hook.failing_since.isoformat()})"
        hook.save(update_fields=["active", "disabled_reason"])
        hook.deliveries.filter(status="pending").update(status="cancelled", next_attempt_at=None, finished_at=now)
        data = {"webhook_id": hook.pk, "url": hook.url, "reason": hook.disabled_reason}
        result.disabled.append(events.AccountNotice(hook.user_id, "webhook.disabled", now, data))


def claim_due(limit: int, now: datetime) -> list[tuple[events.WebhookDelivery, int]]:
    """Pending deliveries whose next attempt is due, each with that attempt's number, leased to
    the caller for ``CLAIM_LEASE_S`` so that no other delivery task takes them meanwhile."""
    from gpubroker.gateway.models import WebhookDelivery

    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("webhook")
            .filter(status="pending", attempts__gt=0, next_attempt_at__lte=now)
            .order_by("next_attempt_at")[:limit]
        )
        lease = now + timedelta(seconds=CLAIM_LEASE_S)
        WebhookDelivery.objects.filter(pk__in=[row.pk for row in rows]).update(next_attempt_at=lease)
    return [(_envelope(row), row.attempts + 1) for row in rows]


def _envelope(row: Any) -> events.WebhookDelivery:
    return events.WebhookDelivery(
        row.delivery_id,
        row.webhook_id,
        row.webhook.user_id,
        row.url,
        row.event,
        row.body.encode(),
        dict(row.headers),
        row.created_at,
    )


def for_owner(webhook_id: int, user_id: int, limit: int) -> list[dict[str, Any]] | None:
    """The webhook's latest deliveries with their attempts, or None when it is not the user's."""
    from gpubroker.gateway.models import Webhook, WebhookDelivery

    if not Webhook.objects.filter(pk=webhook_id, user_id=user_id).exists():
        return None
    rows = WebhookDelivery.objects.filter(webhook_id=webhook_id).order_by("-created_at", "-pk")[:limit]
    return [
        {
            "delivery_id": row.delivery_id,
            "event": row.event,
            "status": row.status,
            "created_at": row.created_at,
            "next_attempt_at": row.next_attempt_at,
            "attempts": [
                {
                    "number": attempt.number,
                    "at": attempt.at,
                    "status_code": attempt.status_code,
                    "error": attempt.error,
                    "latency_ms": attempt.latency_ms,
                    "outcome": attempt.outcome,
                }
                for attempt in sorted(row.attempt_rows.all(), key=lambda attempt: attempt.number)
            ],
        }
        for row in rows.prefetch_related("attempt_rows")
    ]
