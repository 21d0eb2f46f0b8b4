"""The notifier: users' alert rules and webhooks, acted on once per event across all instances.

Every gateway instance runs one, and they share the consumer group ``gpubroker-notify`` on the
price updates and provider events: the bus splits those records between the instances, so
each is handled by one of them (and again by another if that one stops before committing: at
least once; deliveries then keep their ids, see ``deliveries``). For each record:

- a price update that crosses users' alert rules (``rules``) becomes one ``rule`` alert per rule
  on ``gpubroker.price-alerts``, which every instance consumes and pushes to the owner's
  connections, and a ``price.alert`` delivery to each of the owner's webhooks;
- a price update is also a ``price.change`` delivery to every webhook that asked for those;
- a provider event that changes the provider's health status (healthy, degraded, unhealthy) is
  a ``provider.health`` delivery.

Deliveries go to ``gpubroker.webhooks`` for the delivery service to POST. A record is handled
only once everything it caused is on the bus; a failure (the bus or the vault away) is retried
with backoff instead of skipping the record. Rules and webhooks are re-read from the database
every ``RELOAD_S``, and at once after a change made through this instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson

from gpubroker.core import events
from gpubroker.core.bus import Bus, Record
from gpubroker.core.prices import price_text
from gpubroker.core.vault import KeyValueVault
from gpubroker.gateway import db
from gpubroker.gateway.catalog.store import Catalog, ProviderState
from gpubroker.gateway.realtime.deliveries import Deliveries, Hook
from gpubroker.gateway.realtime.rules import Rule, RuleBook, compile_rule

log = logging.getLogger(__name__)

GROUP = "gpubroker-notify"
RELOAD_S = 5.0
MAX_RETRY_DELAY_S = 30.0


class Notifier:
    def __init__(
        self, bus: Bus, catalog: Catalog, vault: KeyValueVault, caught_up: asyncio.Event | None = None
    ) -> None:
        """``caught_up``: set once the catalogue holds what is on the bus. The group's records
        are not taken before, since a rule judges an offer by the catalogue's copy: an instance
        just started would skip the alerts of every offer it has not read yet."""
        self._bus = bus
        self._catalog = catalog
        self._caught_up = caught_up
        self._deliveries = Deliveries(vault)
        self._rules = RuleBook()
        self._hooks: list[Hook] = []
        self._health: dict[str, ProviderState] = {}
        self._stale = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once rules are loaded and the group subscription is open."""
        self.handled = 0  # records, rules fired and deliveries made by this instance (for /health)
        self.fired = 0
        self.delivered = 0

    def invalidate(self) -> None:
        """Rules or webhooks changed: read them again before the next record."""
        self._stale.set()

    async def run(self) -> None:
        if self._caught_up is not None:
            await self._caught_up.wait()
        await self._retry(self.reload, "reading alert rules and webhooks")
        reloader = asyncio.create_task(self._reload_periodically())
        try:
            records = self._bus.subscribe((events.PRICE_UPDATES, events.PROVIDER_EVENTS), group=GROUP)
            self.ready.set()
            async for record in records:
                if self._stale.is_set():
                    await self._retry(self.reload, "reading alert rules and webhooks")
                await self._retry(partial(self.handle, record), f"notifying for {record.topic}@{record.offset}")
                self.handled += 1
        finally:
            reloader.cancel()

    async def reload(self) -> None:
        self._stale.clear()
        rules, hooks = await db.run(_load, self._catalog.provider_names())
        self._rules, self._hooks = RuleBook(rules), hooks
        self._deliveries.forget({hook.id for hook in hooks})

    async def _reload_periodically(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stale.wait(), RELOAD_S)
            try:
                await self.reload()
            except Exception:
                log.exception("could not read alert rules and webhooks; keeping the ones loaded")

    async def _retry(self, step: Callable[[], Awaitable[None]], what: str) -> None:
        """Until it succeeds, with backoff: skipping would lose a notification. Only a record
        that cannot be decoded is skipped (logged), as it would fail for ever."""
        delay = 0.5
        while True:
            try:
                return await step()
            except ValueError as exc:
                log.error("%s: skipped, undecodable: %s", what, exc)
                return
            except Exception:
                log.exception("%s failed; retrying in %.1fs", what, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)

    async def handle(self, record: Record) -> None:
        if record.value is None:
            return
        source = f"{record.topic}/{record.partition}/{record.offset}"
        now = datetime.now(UTC)
        if record.topic == events.PRICE_UPDATES:
            update = events.PriceUpdate.decode(record.value)
            fired = self._fired(update)
            await self._publish(await self._price_deliveries(update, fired, source, now), fired)
            if fired:
                self.fired += len(fired)
                try:  # what a user sees in the list; not worth sending the alerts again for
                    await db.run(_mark_triggered, [rule.alert_id for rule, _ in fired], now)
                except Exception:
                    log.warning("could not record when alerts %s fired", [rule.alert_id for rule, _ in fired])
        elif record.topic == events.PROVIDER_EVENTS:
            event = events.ProviderEvent.decode(record.value)
            await self._publish(await self._health_deliveries(event, source, now), [])

    def _fired(self, update: events.PriceUpdate) -> list[tuple[Rule, events.PriceAlert]]:
        offer = self._catalog.offers.get(update.offer_id)
        if offer is None or not self._rules.size:
            return []  # an offer this instance does not hold (yet) cannot be judged by the filters
        if offer.price_per_hour != update.new_price:
            offer = offer.model_copy(update={"price_per_hour": update.new_price})
        fired = []
        for rule in self._rules.crossed(offer, update.old_price, update.new_price, self._catalog.vocabulary):
            detail = {"direction": rule.direction, "threshold": rule.price, "per_gpu": rule.per_gpu}
            alert = events.PriceAlert(
                "rule",
                update.provider,
                update.offer_id,
                offer.gpu_type,
                offer.region,
                update.old_price,
                update.new_price,
                update.at,
                detail,
                rule.user_id,
                rule.alert_id,
            )
            fired.append((rule, alert))
        return fired

    async def _price_deliveries(
        self,
        update: events.PriceUpdate,
        fired: list[tuple[Rule, events.PriceAlert]],
        source: str,
        now: datetime,
    ) -> list[events.WebhookDelivery | None]:
        made: list[events.WebhookDelivery | None] = []
        for rule, alert in fired:
            data = {**alert.to_json(), "offer": _offer_json(self._catalog, update.offer_id)}
            for hook in self._hooks:
                if hook.user_id == rule.user_id and "price.alert" in hook.events:
                    alert_source = f"{source}/{rule.alert_id}"
                    made.append(await self._deliveries.make(hook, "price.alert", data, alert_source, now))
        change: dict[str, Any] = {
            "provider": update.provider,
            "offer_id": update.offer_id,
            "gpu_type": update.gpu_type,
            "region": update.region,
            "old_price": price_text(update.old_price),
            "new_price": price_text(update.new_price),
            "at": update.at.isoformat(),
        }
        for hook in self._hooks:
            if "price.change" in hook.events:
                made.append(await self._deliveries.make(hook, "price.change", change, source, now))
        return made

    async def _health_deliveries(
        self, event: events.ProviderEvent, source: str, now: datetime
    ) -> list[events.WebhookDelivery | None]:
        state = self._health.get(event.provider)
        if state is None:  # the first event seen is the baseline; changes after it are news
            state = self._health[event.provider] = ProviderState(event.provider)
            state.apply(event)
            return []
        before = state.status
        state.apply(event)
        if state.status == before:
            return []
        data = {**state.to_json(now), "previous_status": before, "event_type": event.event_type}
        return [
            await self._deliveries.make(hook, "provider.health", data, source, now)
            for hook in self._hooks
            if "provider.health" in hook.events
        ]

    async def _publish(
        self, deliveries: Sequence[events.WebhookDelivery | None], fired: list[tuple[Rule, events.PriceAlert]]
    ) -> None:
        sent = 0
        for _, alert in fired:
            await self._bus.publish(events.PRICE_ALERTS, alert.offer_id, alert.encode())
        for delivery in deliveries:
            if delivery is not None:
                await self._bus.publish(events.WEBHOOKS, str(delivery.webhook_id), delivery.encode())
                sent += 1
        if fired or sent:
            await self._bus.flush()
        self.delivered += sent


def _offer_json(catalog: Catalog, offer_id: str) -> Any:
    """The offer as the API renders it (exact prices), for orjson to embed."""
    rendered = catalog.rendered.get(offer_id)
    return None if rendered is None else orjson.Fragment(rendered)


def _load(known_providers: set[str]) -> tuple[list[Rule], list[Hook]]:
    from gpubroker.gateway.models import PriceAlert, Webhook

    rules = []
    for row in PriceAlert.objects.filter(active=True, user__is_active=True).order_by("pk"):
        rule = compile_rule(row.pk, row.user_id, row.filters, row.direction, row.price, row.per_gpu, known_providers)
        if rule is not None:
            rules.append(rule)
    hooks = [
        Hook(row.pk, row.user_id, row.url, frozenset(row.events))
        for row in Webhook.objects.filter(active=True, user__is_active=True).order_by("pk")
    ]
    return rules, hooks


def _mark_triggered(alert_ids: list[int], at: datetime) -> None:
    from gpubroker.gateway.models import PriceAlert

    PriceAlert.objects.filter(pk__in=alert_ids).update(last_triggered_at=at)
