"""The worker side of renting: carry out one provider's rental commands and report each result.

Runs beside the provider's poll loop (in the worker process, or embedded in the gateway's), in
the consumer group ``gpubroker-rentals-<provider>``, so each command is carried out by one worker
of that provider. Commands for other providers are skipped. The calls go through a
``RentalExecutor`` (``workers.renting``), which holds the money rules; this module only turns
commands into calls and outcomes into ``RentalResult`` records, keyed like the command so a
rental's results stay in order. Each command names whose credentials to use (the platform's, or
the renting user's own, read from the vault like the platform's and cached the same way).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import aiohttp

from gpubroker.core.bus import Bus
from gpubroker.core.errors import CredentialsUnavailable, ProviderAuthError, ProviderError
from gpubroker.core.logs import register_secrets
from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.provider import Credentials
from gpubroker.core.rental_messages import RENTAL_COMMANDS, RENTAL_RESULTS, RentalCommand, RentalResult
from gpubroker.core.renting import (
    Instance,
    InstanceNotFound,
    InstanceState,
    Refusal,
    RefusalKind,
    RentalRefused,
    can_rent,
)
from gpubroker.core.secrets import SecretStore, credentials_user
from gpubroker.core.settings import Settings
from gpubroker.workers.renting import RentalExecutor
from gpubroker.workers.transport import HttpTransport

log = logging.getLogger(__name__)


def group_for(provider: str) -> str:
    return f"gpubroker-rentals-{provider}"


class RentalAgent:
    """Use as ``await RentalAgent(...).run()``; cancel the task to stop it."""

    def __init__(self, provider: RegisteredProvider, *, bus: Bus, secrets: SecretStore, settings: Settings) -> None:
        if not can_rent(provider.adapter):
            raise ValueError(f"{provider.info.name} does not rent")
        self.info = provider.info
        self._adapter = provider.adapter()
        self._bus = bus
        self._secrets = secrets
        self._base_url = settings.base_url_for(self.info.name, self.info.base_url)
        self.handled = 0

    async def run(self) -> None:
        async with aiohttp.ClientSession(headers={"User-Agent": "gpubroker-worker"}) as session:
            transport = HttpTransport(
                session, provider=self.info.name, base_url=self._base_url, timeout_s=self.info.request_timeout_s
            )
            async for record in self._bus.subscribe([RENTAL_COMMANDS], group=group_for(self.info.name)):
                if record.value is None:
                    continue
                try:
                    command = RentalCommand.decode(record.value)
                except ValueError as exc:
                    log.warning("%s: skipped a rental command that cannot be read: %s", self.info.name, exc)
                    continue
                if command.provider != self.info.name:
                    continue
                result = await self.carry_out(command, transport)
                await self._bus.publish(RENTAL_RESULTS, command.rental_id or command.command_id, result.encode())
                self.handled += 1

    async def carry_out(self, command: RentalCommand, transport: HttpTransport) -> RentalResult:
        """One command, whatever happens: every failure becomes a result, never an exception."""

        def result(outcome: str, **fields: object) -> RentalResult:
            return RentalResult(
                command.command_id,
                self.info.name,
                command.action,
                outcome,
                rental_id=command.rental_id,
                at=datetime.now(UTC).isoformat(),
                credentials=command.credentials,
                **fields,  # type: ignore[arg-type]
            )

        try:
            credentials = await self._credentials(command.credentials)
        except CredentialsUnavailable as exc:
            return result("error", error=str(exc))
        if credentials is None:  # the user removed their integration: nothing can be done on their account
            reason = f"the user's own {self.info.display_name} credentials are no longer stored"
            return result("refused", refusal=Refusal(RefusalKind.AUTH, reason))
        register_secrets(credentials.secret_values())
        executor = RentalExecutor(self._adapter, transport, credentials)
        try:
            if command.action == "instances":
                return result("ok", instances=tuple(await executor.instances()))
            if command.action == "provision":
                assert command.request is not None, "a provision command carries its request"
                return result("ok", instance=await executor.provision(command.request))
            if command.action == "status":
                return result("ok", instance=await executor.status(command.instance_id))
            if command.action == "scale":
                assert command.request is not None, "a scale command carries the rental's request"
                current = await executor.status(command.instance_id)
                return result("ok", instance=await executor.scale(current, command.gpu_count, command.request))
            instance_id = command.instance_id
            if not instance_id and command.request is not None:  # ended before its create was answered
                found = await executor.find(command.request.tag)
                if found is None:
                    return result("gone", error="no instance carries the rental's tag")
                instance_id = found.instance_id
            await executor.terminate(instance_id)
            return result("ok", instance=_ended(instance_id, command))
        except InstanceNotFound as exc:
            return result("gone", error=exc.reason)
        except RentalRefused as exc:
            return result("refused", refusal=Refusal(exc.kind, exc.reason))
        except ProviderAuthError as exc:  # the provider did not act: a refusal, not an unknown outcome
            return result("refused", refusal=Refusal(RefusalKind.AUTH, exc.reason))
        except ProviderError as exc:
            log.warning("%s: %s of rental %s failed: %s", self.info.name, command.action, command.rental_id, exc)
            return result("error", error=exc.reason)

    async def _credentials(self, ref: str) -> Credentials | None:
        """The credentials ``ref`` names: the platform's, or a user's own (None if they have gone)."""
        user_id = credentials_user(ref)
        if user_id is None:
            return await self._secrets.credentials(self.info.name)
        return await self._secrets.user_credentials(self.info.name, user_id)


def _ended(instance_id: str, command: RentalCommand) -> Instance:
    tag = command.request.tag if command.request is not None else None
    return Instance(instance_id, InstanceState.TERMINATED, tag)
