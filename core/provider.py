"""What a provider plugin declares about itself, and the credentials the runtime hands it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

# Kubernetes resource quantities, in the forms worker resources are written: "250m" or "1" CPU,
# "256Mi" or "1Gi" memory.
_CPU = r"^([1-9][0-9]*m|[0-9]+(\.[0-9]+)?)$"
_MEMORY = r"^[1-9][0-9]*(Mi|Gi)$"


class CredentialSpec(BaseModel):
    """One credential a provider's API takes, e.g. ``api_key``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    required: bool = True
    description: str = ""


class WorkerResources(BaseModel):
    """What one worker process of this provider needs: its pod's requests and limits.

    A provider that holds large price files in memory while it parses them (a cloud's whole
    regional price list) asks for more than one that pages a small JSON API.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu_request: str = Field(default="50m", pattern=_CPU)
    cpu_limit: str = Field(default="500m", pattern=_CPU)
    memory_request: str = Field(default="160Mi", pattern=_MEMORY)
    memory_limit: str = Field(default="320Mi", pattern=_MEMORY)

    @model_validator(mode="after")
    def _requests_within_limits(self) -> WorkerResources:
        if _millicores(self.cpu_request) > _millicores(self.cpu_limit):
            raise ValueError(f"cpu_request {self.cpu_request} is more than cpu_limit {self.cpu_limit}")
        if _mebibytes(self.memory_request) > _mebibytes(self.memory_limit):
            raise ValueError(f"memory_request {self.memory_request} is more than memory_limit {self.memory_limit}")
        return self


def _millicores(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else float(quantity) * 1000


def _mebibytes(quantity: str) -> int:
    return int(quantity[:-2]) * (1024 if quantity.endswith("Gi") else 1)


class ProviderInfo(BaseModel):
    """A provider's metadata: the worker's schedule and limits come from here."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Stable slug, used in ids.")
    display_name: str = Field(min_length=1)
    api_base_url: HttpUrl
    homepage: HttpUrl | None = None
    credentials: tuple[CredentialSpec, ...] = ()
    poll_interval_s: float = Field(default=60.0, ge=5.0)
    concurrency_limit: int = Field(default=4, ge=1, le=64)
    rate_limit_per_minute: int = Field(default=60, ge=1)
    request_timeout_s: float = Field(default=5.0, gt=0, le=60)
    shards: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Worker replicas that split the provider's calls between them (``--shard I/N``).",
    )
    resources: WorkerResources = WorkerResources()

    @property
    def base_url(self) -> str:
        return str(self.api_base_url).rstrip("/")

    def credentials_status(self, available: Mapping[str, str]) -> str:
        """``none needed``, ``configured``, ``optional, not set`` or ``missing: <names>``."""
        if not self.credentials:
            return "none needed"
        missing = [spec.name for spec in self.credentials if spec.required and spec.name not in available]
        if missing:
            return "missing: " + ", ".join(missing)
        if all(spec.name in available for spec in self.credentials):
            return "configured"
        return "optional, not set"


class Credentials(Mapping[str, str]):
    """A read-only mapping of credential values that never shows them when printed.

    Everything that could end in a log line (``repr``, ``str``, f-strings, tracebacks' locals)
    sees only the names.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Credentials({', '.join(f'{name}=***' for name in self._values)})"

    __str__ = __repr__

    def secret_values(self) -> tuple[str, ...]:
        """The raw values, for the redaction filter only."""
        return tuple(value for value in self._values.values() if value)
