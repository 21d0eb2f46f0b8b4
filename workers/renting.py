"""Sending a plugin's rental calls, with the rules money demands.

- A provision is sent once, never retried blindly. Before it, the executor looks for an instance
  already carrying the rental's tag (a retried request, or a crash between the provider's answer
  and our commit) and returns that one instead of renting a second.
- When a provision's outcome is unknown (a timeout, a dropped connection, a 5xx), the provider
  may have created the instance anyway: the executor lists the instances and returns the one
  with the tag if it is there, else re-raises, and the reconciler finds it if it appears later.
- Reads (status, list) and terminate are idempotent, so they are retried on transient failures;
  terminating an instance the provider no longer knows counts as done.
- A refusal the plugin recognises (out of capacity, insufficient balance, ...) is a
  ``RentalRefused`` carrying the provider's own reason.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from gpubroker.core.adapter import Call, ProviderAdapter, Response
from gpubroker.core.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderHTTPError,
    ProviderPluginFault,
    ProviderTimeout,
    ProviderUnreachable,
)
from gpubroker.core.provider import Credentials
from gpubroker.core.renting import (
    Instance,
    InstanceNotFound,
    InstanceState,
    RefusalKind,
    RentalAction,
    RentalRefused,
    RentalRequest,
    RentingUnsupported,
)
from gpubroker.workers.poll import RetryPolicy, check_status, retryable
from gpubroker.workers.transport import Transport

log = logging.getLogger(__name__)
T = TypeVar("T")


class RentalExecutor:
    """One provider's rental calls, sent through ``transport`` with ``credentials``."""

    def __init__(
        self,
        adapter: ProviderAdapter,
        transport: Transport,
        credentials: Credentials,
        *,
        retry: RetryPolicy = RetryPolicy(attempts=3, initial_s=0.2, max_s=2.0),
    ) -> None:
        self.adapter = adapter
        self._transport = transport
        self._credentials = credentials
        self._retry = retry

    @property
    def provider(self) -> str:
        return self.adapter.info.name

    async def provision(self, request: RentalRequest) -> Instance:
        """Rent one instance for ``request``, or return the one that already carries its tag."""
        self._require(RentalAction.PROVISION)
        existing = await self.find(request.tag)
        if existing is not None:
            log.info(
                "%s: instance %s already carries %s; not renting again",
                self.provider,
                existing.instance_id,
                request.tag,
            )
            return existing
        call = self._plugin(lambda: self.adapter.provision_call(request))
        try:
            response = await self._send(call)
            return self._read(call, lambda: self.adapter.read_provisioned(response, request))
        except ProviderError as exc:
            if not _outcome_unknown(exc):
                raise
            found = await self.find(request.tag)
            if found is None:
                raise
            log.warning(
                "%s: provision of %s failed (%s) but the instance exists; using it", self.provider, request.tag, exc
            )
            return found

    async def status(self, instance_id: str) -> Instance:
        """The instance now; ``InstanceNotFound`` when the provider no longer knows it."""
        self._require(RentalAction.STATUS)
        call = self._plugin(lambda: self.adapter.status_call(instance_id))
        try:
            response = await self._retrying(lambda: self._send(call))
        except RentalRefused as exc:
            if exc.kind is RefusalKind.NOT_FOUND:
                raise InstanceNotFound(self.provider, f"instance {instance_id} does not exist") from None
            raise
        except ProviderHTTPError as exc:
            if exc.status == 404:
                raise InstanceNotFound(self.provider, f"instance {instance_id} does not exist") from None
            raise
        return self._read(call, lambda: self.adapter.read_status(response, instance_id))

    async def instances(self) -> list[Instance]:
        """Every instance of the account, as the provider lists them."""
        self._require(RentalAction.INSTANCES)
        call = self._plugin(self.adapter.instances_call)
        response = await self._retrying(lambda: self._send(call))
        return self._read(call, lambda: self.adapter.read_instances(response))

    async def tagged(self) -> list[Instance]:
        """The account's instances that carry a broker tag and are not terminated."""
        return [
            i for i in await self.instances() if i.rental_id is not None and i.state is not InstanceState.TERMINATED
        ]

    async def find(self, tag: str) -> Instance | None:
        """The live instance carrying ``tag``, if any."""
        return next(
            (i for i in await self.instances() if i.tag == tag and i.state is not InstanceState.TERMINATED), None
        )

    async def scale(self, instance: Instance, gpu_count: int, request: RentalRequest) -> Instance:
        """Change a running instance to ``gpu_count`` GPUs, then read it back."""
        self._require(RentalAction.SCALE)
        call = self._plugin(lambda: self.adapter.scale_call(instance, gpu_count, request))
        await self._send(call)
        return await self.status(instance.instance_id)

    async def terminate(self, instance_id: str) -> None:
        """End the instance; one the provider no longer knows is already ended."""
        self._require(RentalAction.TERMINATE)
        call = self._plugin(lambda: self.adapter.terminate_call(instance_id))
        try:
            await self._retrying(lambda: self._send(call))
        except RentalRefused as exc:
            if exc.kind is not RefusalKind.NOT_FOUND:
                raise
        except ProviderHTTPError as exc:
            if exc.status != 404:
                raise

    def _require(self, action: RentalAction) -> None:
        if action not in self.adapter.renting:
            raise RentingUnsupported(self.provider, f"{self.adapter.info.display_name} does not support {action}")

    async def _send(self, call: Call) -> Response:
        secrets = self._credentials.secret_values()
        authorized = self._plugin(lambda: self.adapter.authorize(call, self._credentials))
        try:
            response = await self._transport.send(authorized)
        except ProviderError as exc:
            raise exc.redact(secrets) from None
        refusal = self._plugin(lambda: self.adapter.read_refusal(response))
        if refusal is not None and refusal.kind is RefusalKind.AUTH:
            raise ProviderAuthError(self.provider, response.status, refusal.reason).redact(secrets)
        if refusal is not None:
            raise RentalRefused(self.provider, refusal).redact(secrets)
        return check_status(response, self.provider, secrets)

    async def _retrying(self, send: Callable[[], Awaitable[T]]) -> T:
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self._retry.attempts),
            wait=wait_exponential_jitter(multiplier=self._retry.initial_s, max=self._retry.max_s),
            retry=retry_if_exception(retryable),
            reraise=True,
        ):
            with attempt:
                return await send()
        raise AssertionError("unreachable")  # AsyncRetrying either returns or re-raises

    def _plugin(self, build: Callable[[], T]) -> T:
        try:
            return build()
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderPluginFault(self.provider, f"the plugin raised {type(exc).__name__}: {exc}") from None

    def _read(self, call: Call, read: Callable[[], T]) -> T:
        try:
            return read()
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderBadResponse(
                self.provider, f"could not read the answer to {call.method} {call.path}: {type(exc).__name__}: {exc}"
            ) from None


def _outcome_unknown(error: ProviderError) -> bool:
    """Whether the provider may have acted although no answer we could read said so."""
    if isinstance(error, ProviderTimeout | ProviderUnreachable | ProviderBadResponse):
        return True
    return isinstance(error, ProviderHTTPError) and error.status >= 500
