"""The gateway's long-lived parts: bus, catalogue, cache and, embedded, the provider workers.

Started and stopped by the ASGI lifespan (see ``asgi.py``). Views reach it through
``current()``; there is exactly one per process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from gpubroker.core import tracing, webtargets
from gpubroker.core.bus import Bus, open_bus
from gpubroker.core.cache import TwoTierCache
from gpubroker.core.plugins import ProviderRegistry, load_providers
from gpubroker.core.ratelimit import SlidingWindowLimiter
from gpubroker.core.renting import can_rent
from gpubroker.core.secrets import open_secret_store
from gpubroker.core.settings import Settings
from gpubroker.core.vault import open_vault
from gpubroker.gateway import db, fx_tables, retention
from gpubroker.gateway.agents.actions import AgentActions
from gpubroker.gateway.catalog.index import OfferIndex
from gpubroker.gateway.catalog.ingest import Ingest
from gpubroker.gateway.catalog.paging import Pager
from gpubroker.gateway.catalog.store import Catalog
from gpubroker.gateway.draining import draining
from gpubroker.gateway.fastpath import FastPath
from gpubroker.gateway.identity.accounts import Accounts
from gpubroker.gateway.identity.guard import Guard
from gpubroker.gateway.identity.keys import KeyRing
from gpubroker.gateway.identity.routes import RouteTable
from gpubroker.gateway.identity.tokens import Tokens
from gpubroker.gateway.popular import QueryCounts
from gpubroker.gateway.realtime.changes import ChangeFeed
from gpubroker.gateway.realtime.hub import Hub
from gpubroker.gateway.realtime.market import Market
from gpubroker.gateway.realtime.notify import Notifier
from gpubroker.gateway.rentals.feed import RentalFeed
from gpubroker.gateway.rentals.reconciler import Reconciler
from gpubroker.gateway.rentals.service import Rentals
from gpubroker.gateway.verdicts import SummaryCache as VerdictCache

if TYPE_CHECKING:
    from gpubroker.workers.worker import ProviderWorker

log = logging.getLogger(__name__)

_current: GatewayRuntime | None = None
STOP_TIMEOUT_S = 10.0
DRAIN_CHECK_S = 0.1


def _route_table() -> RouteTable:
    from gpubroker.gateway.realtime.sockets import WEBSOCKETS

    return RouteTable.from_django({path: consumer.requires for path, consumer in WEBSOCKETS.items()})


def current() -> GatewayRuntime:
    if _current is None:
        raise RuntimeError("the gateway runtime is not started (is the ASGI lifespan enabled?)")
    return _current


class GatewayRuntime:
    def __init__(self, settings: Settings, *, run_workers: bool = False, bus: Bus | None = None) -> None:
        self.settings = settings
        self.run_workers = run_workers
        self.bus = bus or open_bus(settings)
        self.catalog = Catalog()
        self.cache = TwoTierCache(
            settings.redis_url, ttl_s=settings.cache_ttl_s, max_entries=settings.cache_max_entries
        )
        self.pager = Pager(self.cache, settings.signing_key.encode(), pin_ttl_s=settings.cursor_ttl_s)
        self.fastpath = FastPath(lambda: self.catalog.fingerprint, max_entries=settings.cache_max_entries)
        self._changed = asyncio.Event()
        self.hub = Hub()
        self.changes = ChangeFeed(self.hub, self.catalog)
        self.ingest = Ingest(
            self.bus,
            self.catalog,
            on_change=self._changed.set,
            on_offer=self.changes.offer,
            on_provider=self.changes.provider,
            on_alert=self.changes.alert,
            on_notice=self.changes.notice,
        )
        self.market = Market(self.bus, self.hub)
        self.vault = open_vault(settings)
        self.resolver: webtargets.Resolver = webtargets.system_resolver
        self.notifier = Notifier(self.bus, self.catalog, self.vault, caught_up=self.hub.live)
        ttls = {
            "access": settings.access_token_ttl_s,
            "refresh": settings.refresh_token_ttl_s,
            "service": settings.service_token_ttl_s,
        }
        self.keys = KeyRing(self.vault, settings.jwt_key_vault_path, max_token_ttl_s=max(ttls.values()))
        self.tokens = Tokens(self.keys, ttls)  # type: ignore[arg-type]
        self.accounts = Accounts()
        self.limiter = SlidingWindowLimiter(settings.redis_url)
        self.guard = Guard(settings, self.tokens, self.accounts, self.limiter, routes=_route_table)
        self.verdicts = VerdictCache()
        self.queries = QueryCounts(settings.redis_url)
        self._plugins: ProviderRegistry | None = None
        self.rentals = Rentals(self.bus, settings, wait_s=settings.rental_wait_s)
        self.rental_feed = RentalFeed(self.bus, self.hub)
        self.reconciler = Reconciler(self.bus, self.rentals, settings)
        self.agent_actions = AgentActions(self.bus, self.hub, self.rentals, self.catalog, self.index)
        self._index: OfferIndex | None = None
        self.warmed = 0
        self.workers: dict[str, ProviderWorker] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._stack = AsyncExitStack()

    async def start(self) -> None:
        global _current
        tracing.configure("gpubroker-gateway")
        await self.keys.load()
        await self.bus.start()
        self._tasks.append(asyncio.create_task(self._reload_keys(), name="keys"))
        self._tasks.append(asyncio.create_task(self.ingest.run(), name="ingest"))
        self._tasks.append(asyncio.create_task(self._when_settled(), name="settled"))
        self._tasks.append(asyncio.create_task(self.notifier.run(), name="notify"))
        self._tasks.append(asyncio.create_task(self.market.run(), name="market"))
        self._tasks.append(asyncio.create_task(self.hub.beat(), name="heartbeat"))
        self._tasks.append(asyncio.create_task(self._refresh_on_change(), name="refresh"))
        self._tasks.append(asyncio.create_task(retention.run_periodically(self.settings), name="retention"))
        self._tasks.append(asyncio.create_task(self.limiter.keep_presence(), name="presence"))
        self._tasks.append(asyncio.create_task(self._watch_for_drain(), name="drain"))
        self._tasks.append(asyncio.create_task(self.queries.run(), name="query-counts"))
        self._tasks.append(asyncio.create_task(fx_tables.use_stored(), name="fx"))
        self._tasks.append(asyncio.create_task(self.rentals.run(), name="rental-results"))
        self._tasks.append(asyncio.create_task(self.rental_feed.run(), name="rental-feed"))
        self._tasks.append(asyncio.create_task(self.rentals.relay.run(), name="rental-events"))
        self._tasks.append(asyncio.create_task(self.reconciler.run(), name="reconciler"))
        self._tasks.append(asyncio.create_task(self.agent_actions.feed(), name="agent-feed"))
        if self.run_workers:
            await self._start_workers()
        _current = self

    async def _watch_for_drain(self) -> None:
        """Notice when the server starts draining (``gateway.draining``): say ``Connection:
        close`` on every answer, report not ready from then on, and end the event streams (their
        clients resume on another instance; an open stream would keep the server from stopping)."""
        while not draining():
            await asyncio.sleep(DRAIN_CHECK_S)
        log.info("draining: answering with Connection: close until the server stops")
        self.guard.draining = True
        self.hub.close()

    def readiness(self) -> list[str]:
        """Why this instance should not take traffic yet (or any more); empty when ready: the
        catalogue has caught up with the bus and the stream consumer is live, so a subscriber
        never misses a change that REST already shows."""
        reasons = []
        if self._stop.is_set() or self.guard.draining:
            reasons.append("stopping")
        if not self.changes.live:
            reasons.append("the catalogue is still catching up with the bus")
        ingest = next((task for task in self._tasks if task.get_name() == "ingest"), None)
        if ingest is None or ingest.done():
            reasons.append("the bus consumer is not running")
        return reasons

    def plugins(self, *, reload: bool = False) -> ProviderRegistry:
        """The installed provider plugins (their metadata), loaded on first use or when asked."""
        if self._plugins is None or reload:
            self._plugins = load_providers(allow=self.settings.plugins, block=self.settings.plugins_blocked)
        return self._plugins

    def index(self) -> OfferIndex:
        """The catalogue snapshot queries run on: rebuilt when the catalogue has changed (its
        fingerprint, which also changes when a provider's data turns stale), at most every
        ``index_refresh_s`` so a stream of price updates costs a bounded rebuild rate."""
        index = self._index
        if index is None or (
            index.fingerprint != self.catalog.fingerprint
            and time.monotonic() - index.built_at >= self.settings.index_refresh_s
        ):
            self._index = index = self.catalog.build_index()
        return index

    async def _when_settled(self) -> None:
        """Once the catalogue is rebuilt and the backlog consumed: publish changes to subscribers
        from now on, and (FR-8.3) copy the answers other instances rendered for this same
        catalogue from Redis into L2."""
        await self.ingest.settled()
        self.changes.live = True
        index = self.catalog.build_index()
        self.warmed = await self.cache.warm(f"{index.fingerprint}:")
        log.info("catalogue rebuilt (%d offers); warmed %d cached answers from Redis", index.size, self.warmed)

    async def _reload_keys(self) -> None:
        """Pick up a key rotation done by another instance or the CLI."""
        while True:
            await asyncio.sleep(15)
            await self.keys.refresh_if_due()

    async def _refresh_on_change(self) -> None:
        """Re-render the popular answers off the request path: when the catalogue changes, and
        before they expire (so no client pays for a re-render at the TTL)."""
        ahead_s = self.settings.cache_ttl_s / 4
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=ahead_s)
                await asyncio.sleep(self.settings.index_refresh_s)  # let a burst of changes land first
            except TimeoutError:
                pass
            self._changed.clear()
            try:
                await self.fastpath.refresh(self.index(), expiring_within_s=ahead_s)
            except Exception:
                log.exception("refreshing cached answers failed; they will be rendered on request")

    async def _start_workers(self) -> None:
        from gpubroker.workers.rental_agent import RentalAgent
        from gpubroker.workers.worker import ProviderWorker

        registry = load_providers(allow=self.settings.plugins, block=self.settings.plugins_blocked)
        secrets = open_secret_store(self.settings)
        for provider in registry:
            worker = await self._stack.enter_async_context(
                ProviderWorker(provider, bus=self.bus, secrets=secrets, settings=self.settings)
            )
            self.workers[provider.info.name] = worker
            self._tasks.append(asyncio.create_task(worker.run(self._stop), name=f"worker:{provider.info.name}"))
            if can_rent(provider.adapter):
                agent = RentalAgent(provider, bus=self.bus, secrets=secrets, settings=self.settings)
                self._tasks.append(asyncio.create_task(agent.run(), name=f"rentals:{provider.info.name}"))
        log.info("embedded workers started for: %s", ", ".join(registry.names()) or "no providers installed")

    async def stop(self) -> None:
        global _current
        self._stop.set()
        for task in self._tasks:
            if not task.get_name().startswith("worker:"):
                task.cancel()
        # Shutdown is bounded: a task that does not end in time is named in the log and left.
        _, unfinished = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S) if self._tasks else (set(), set())
        if unfinished:
            log.warning(
                "stopping: %s did not end within %.0fs", ", ".join(t.get_name() for t in unfinished), STOP_TIMEOUT_S
            )
        if not await db.finish(STOP_TIMEOUT_S):
            log.warning("stopping: database work still running after %.0fs", STOP_TIMEOUT_S)
        await self.agent_actions.close()
        await self._stack.aclose()
        await self.cache.close()
        await self.queries.close()
        await self.limiter.close()
        await self.bus.stop()
        tracing.flush()
        if _current is self:
            _current = None
