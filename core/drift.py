"""The drift probe: how a provider's live answers differ from its schemas and its recordings.

``gpubroker plugins probe PROVIDER`` runs one poll of the provider's plugin against the live
API (no retries: one call per request the plugin makes), keeps every answer, and reports:

- where an answer differs from the plugin's answer schema (fields new, missing or retyped, or
  another rule broken), the schema being built from the provider's public reference;
- where it differs in shape from the recorded answer to the same call (fields the recording
  has that the live API no longer sends, fields it sends that the recording lacks, values of
  another JSON type), so a stale recording is seen before it misleads a test;
- GPU names the catalogue does not know, from the offers the plugin made of the answer;
- a plugin that could no longer read the answer at all.

A transport failure (no network, refused credentials, rate limit, error status) is not drift:
it is raised as the typed ``ProviderError`` the worker would see, so the command can print it as
one line. Shapes are compared with array positions folded together (``/offers/[]/gpu_name``),
so one offer lacking an optional field that another has is not a difference.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
import orjson

from gpubroker.core.adapter import Call, PollContext, ProviderAdapter, Response
from gpubroker.core.answer_schemas import AnswerSchemas, json_type
from gpubroker.core.errors import ConfigurationError, ProviderBadResponse, ProviderPluginFault
from gpubroker.core.provider import Credentials
from gpubroker.core.recordings import Exchange, Recordings
from gpubroker.workers.poll import Poller, RetryPolicy
from gpubroker.workers.transport import HttpTransport

Kind = Literal["new", "missing", "retyped", "invalid", "unknown_gpu", "unreadable", "unrecorded", "no_schema"]
Against = Literal["schema", "recording", "catalogue", "plugin"]
ONE_ATTEMPT = RetryPolicy(attempts=1)


@dataclass(frozen=True, order=True)
class Difference:
    """One difference between the live API and what the plugin was built on."""

    against: Against
    kind: Kind
    answer: str
    """The call whose answer differs (``GET /v2/plans``), or empty for the poll as a whole."""
    path: str
    detail: str

    def __str__(self) -> str:
        where = " ".join(part for part in (self.kind, self.answer, self.path) if part)
        return f"{self.against}: {where}: {self.detail}"


@dataclass
class DriftReport:
    provider: str
    base_url: str
    answers: int = 0
    offers: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.differences)

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "base_url": self.base_url,
            "answers": self.answers,
            "offers": self.offers,
            "drifted": self.drifted,
            "differences": [
                {"against": d.against, "kind": d.kind, "answer": d.answer, "path": d.path, "detail": d.detail}
                for d in self.differences
            ],
        }

    def lines(self) -> list[str]:
        head = f"{self.provider}: {self.answers} answer(s) from {self.base_url}, {self.offers} offer(s)"
        if not self.drifted:
            return [f"{head}: no drift from the schemas, the recordings or the GPU catalogue"]
        return [f"{head}: {len(self.differences)} difference(s)", *(f"  {d}" for d in self.differences)]


class _KeepingTransport:
    """Sends calls over HTTP and keeps every answer for the comparison."""

    def __init__(self, inner: HttpTransport) -> None:
        self._inner = inner
        self.answers: list[Response] = []

    async def send(self, call: Call) -> Response:
        response = await self._inner.send(call)
        self.answers.append(response)
        return response


async def probe(
    adapter: type[ProviderAdapter],
    *,
    base_url: str,
    credentials: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> DriftReport:
    """One poll of ``adapter`` against ``base_url``, compared with its schemas and recordings.

    Raises the ``ProviderError`` of a failed call (unreachable, timeout, refused credentials,
    rate limited, error status); differences in what was answered are in the report.
    """
    if adapter.schemas is None:
        raise ProviderPluginFault(adapter.info.name, f"{adapter.__name__}.schemas is not set: nothing to compare with")
    schemas = AnswerSchemas(adapter.schemas)
    recordings = Recordings(adapter.recordings) if adapter.recordings is not None else None
    ctx = PollContext(adapter.info, datetime.now(UTC), "live", Credentials(credentials))
    report = DriftReport(adapter.info.name, base_url)
    async with aiohttp.ClientSession() as session:
        timeout = timeout_s or adapter.info.request_timeout_s
        http = HttpTransport(session, provider=adapter.info.name, base_url=base_url, timeout_s=timeout)
        transport = _KeepingTransport(http)
        try:
            result = await Poller(adapter(), transport, retry=ONE_ATTEMPT).poll(ctx)
        except (ProviderBadResponse, ProviderPluginFault) as exc:
            report.differences.append(Difference("plugin", "unreadable", "", "", exc.reason))
        else:
            report.offers = len(result.offers)
            unknown = sorted({offer.gpu_name for offer in result.offers if offer.gpu_type is None})
            report.differences += [
                Difference("catalogue", "unknown_gpu", "", "", f"GPU name {name!r} is not in the catalogue")
                for name in unknown
            ]
    secrets = Credentials(credentials).secret_values()
    for response in transport.answers:
        if 200 <= response.status < 300:
            report.answers += 1
            report.differences += compare_answer(response, schemas, recordings)
    report.differences = sorted(set(_redact(d, secrets) for d in report.differences))
    return report


def compare_answer(response: Response, schemas: AnswerSchemas, recordings: Recordings | None) -> list[Difference]:
    """How one successful answer differs from its schema and from the recorded answer to the same call."""
    call = response.call
    answer = f"{call.method} {call.path}"
    schema = schemas.for_answer(call.method, call.path)
    if schema is None:
        return [Difference("schema", "no_schema", answer, "", "no answer schema describes this call")]
    differences = [
        Difference("schema", finding.kind, answer, finding.path, finding.detail)
        for finding in schema.check_body(response.body)
    ]
    recorded = _recorded(recordings, call) if recordings is not None else None
    if recorded is None:
        differences.append(Difference("recording", "unrecorded", answer, "", "no recorded answer to this call"))
        return differences
    try:
        live, kept = schema.decode(response.body), schema.decode(recorded.response.body)
    except (orjson.JSONDecodeError, ValueError):
        return differences  # already reported against the schema
    return differences + shape_differences(answer, shape(kept, schema.maps), shape(live, schema.maps))


def shape(document: Any, maps: frozenset[str] = frozenset()) -> dict[str, set[str]]:
    """Every field path in ``document`` with the JSON types seen there; array positions fold to
    ``[]`` and the keys of the maps at ``maps`` (paths in the same folded form) to ``*``."""
    seen: dict[str, set[str]] = {}
    for path, value in _walk(document, "", maps):
        seen.setdefault(path, set()).add(json_type(value))
    return seen


def shape_differences(answer: str, recorded: dict[str, set[str]], live: dict[str, set[str]]) -> list[Difference]:
    """Fields the recording has and the live answer lacks, the reverse, and types the live
    answer has where the recording never had them.

    ``null`` is not a type of its own here: a field recorded as a string and answered as null
    (or the reverse) is the same field, whose value is sometimes unknown; nor is an integer
    where the recording had numbers.
    """
    differences = []
    for path in sorted(recorded.keys() - live.keys()):
        differences.append(Difference("recording", "missing", answer, path, "recorded, but not in the live answer"))
    for path in sorted(live.keys() - recorded.keys()):
        differences.append(Difference("recording", "new", answer, path, "in the live answer, not in the recording"))
    for path in sorted(recorded.keys() & live.keys()):
        was, now = _types(recorded[path]), _types(live[path])
        if was and now - was:
            differences.append(
                Difference("recording", "retyped", answer, path, f"recorded as {'/'.join(sorted(was))}, "
                           f"answered as {'/'.join(sorted(now))}")
            )  # fmt: skip
    return differences


def _types(types: set[str]) -> set[str]:
    kinds = {"number" if t == "integer" else t for t in types}
    kinds.discard("null")
    return kinds


def _walk(value: Any, path: str, maps: frozenset[str]) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}/*" if path in maps else f"{path}/{key}"
            yield where, item
            yield from _walk(item, where, maps)
    elif isinstance(value, list):
        for item in value:
            yield f"{path}/[]", item
            yield from _walk(item, f"{path}/[]", maps)


def _recorded(recordings: Recordings, call: Call) -> Exchange | None:
    """The recorded answer to ``call``: an exact match, else the first with its method and path
    (a live page token or cursor never equals the recorded one)."""
    exact = recordings.find(call.method, call.path, call.params, call.json)
    if exact is not None and 200 <= exact.response.status < 300:
        return exact
    return next(
        (
            exchange
            for exchange in recordings.exchanges("default")
            if exchange.method == call.method.upper()
            and exchange.path.strip("/") == call.path.strip("/")
            and 200 <= exchange.response.status < 300
        ),
        None,
    )


def _redact(difference: Difference, secrets: tuple[str, ...]) -> Difference:
    detail = difference.detail
    for value in secrets:
        detail = detail.replace(value, "***")
    return Difference(difference.against, difference.kind, difference.answer, difference.path, detail)


async def probe_installed(name: str, *, base_url: str | None = None, timeout_s: float | None = None) -> DriftReport:
    """Probe the installed provider ``name`` with its configured credentials and base URL.

    Credentials come from the same store a worker reads (``GPUBROKER_SECRET_<PROVIDER>_<NAME>``
    embedded, Vault in production); a missing required one is a ``ConfigurationError`` naming
    the variable to set, before any call is made.
    """
    from gpubroker.core.plugins import load_providers
    from gpubroker.core.secrets import open_secret_store
    from gpubroker.core.settings import load_settings

    settings = load_settings()
    adapter = load_providers(allow=settings.plugins, block=settings.plugins_blocked).get(name).adapter
    info = adapter.info
    credentials = await open_secret_store(settings).credentials(info.name) if info.credentials else Credentials()
    missing = [spec.name for spec in info.credentials if spec.required and spec.name not in credentials]
    if missing:
        variables = ", ".join(f"GPUBROKER_SECRET_{info.name.upper()}_{m.upper()}" for m in missing)
        raise ConfigurationError(
            f"{info.name} needs credentials to be probed: {', '.join(missing)} (set {variables}, "
            f"or store them in Vault at secret/gpubroker/providers/{info.name})"
        )
    url = base_url or settings.base_url_for(info.name, info.base_url)
    return await probe(adapter, base_url=url, credentials=credentials, timeout_s=timeout_s)
