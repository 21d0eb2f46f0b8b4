"""The small, named set of errors a provider poll can end in.

Workers, the conformance kit and the gateway's health view all branch on these types, so a
plugin never has to invent its own: the runtime turns transport failures, HTTP statuses and
unparseable bodies into one of them, with a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self


class GpubrokerError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigurationError(GpubrokerError):
    """A setting is missing or invalid; the message names the setting."""


class VaultUnavailable(GpubrokerError):
    """The secret store cannot be reached or refused the request; nothing was read or written."""


class VaultPermissionDenied(VaultUnavailable):
    """The secret store answered 403: the identity's policy does not cover the path (a role set up
    wrongly, or a token that was revoked). Retrying does not help; fixing the policy does."""


class PluginError(GpubrokerError):
    """A plugin failed to load or registered something invalid."""


class CredentialsUnavailable(GpubrokerError):
    """Credentials could not be read and no cached copy is young enough to use."""


class ProviderError(GpubrokerError):
    """A provider poll failed. ``provider`` names the provider; messages never hold secrets."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.reason = message

    def redact(self, secrets: Iterable[str]) -> Self:
        """Remove credential values a provider echoed back (in an error body, a URL, ...)."""
        for value in secrets:
            if value:
                self.reason = self.reason.replace(value, "***")
        self.args = (f"{self.provider}: {self.reason}",)
        return self


class ProviderUnreachable(ProviderError):
    """The provider's API could not be reached at all (DNS, refused connection, no network)."""


class ProviderTimeout(ProviderError):
    """The provider did not answer within the request timeout."""


class ProviderHTTPError(ProviderError):
    """The provider answered with an error status."""

    def __init__(self, provider: str, status: int, message: str) -> None:
        super().__init__(provider, f"HTTP {status}: {message}")
        self.status = status


class ProviderAuthError(ProviderHTTPError):
    """The provider rejected our credentials (401/403)."""


class ProviderRateLimited(ProviderHTTPError):
    """The provider asked us to slow down (429); ``retry_after`` is in seconds when it said."""

    def __init__(self, provider: str, retry_after: float | None, message: str) -> None:
        super().__init__(provider, 429, message)
        self.retry_after = retry_after


class ProviderPluginFault(ProviderError):
    """The provider's plugin raised where it must not (building or authorising its calls)."""


class ProviderBadResponse(ProviderError):
    """The provider answered, but not in the format its plugin understands."""
