"""Where the DAGs find the product: each setting from its ``GPUBROKER_*`` environment variable,
else from the Airflow Variable of the same name (set through Airflow's UI or REST API), else
its default. Read when a task runs, never when a DAG file is parsed."""

from __future__ import annotations

import ipaddress
import json
import os

from gpubroker.core.webtargets import Network

FX_SOURCE_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"


class MissingSetting(RuntimeError):
    """A setting the task needs is given nowhere; the message names it and where to give it."""


def setting(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value:
        return value
    try:
        from airflow.sdk import Variable
    except ImportError:  # outside Airflow (the unit tests)
        return default
    try:
        return Variable.get(name, default=default)
    except Exception:  # no metadata database or API to ask (parsing, a bare interpreter)
        return default


def required(name: str) -> str:
    value = setting(name)
    if not value:
        raise MissingSetting(f"{name} is not set: set the environment variable or the Airflow Variable {name}")
    return value


def gateway_url() -> str:
    return required("GPUBROKER_GATEWAY_URL").rstrip("/")


def gateway_instances() -> list[str]:
    """Every gateway instance's base URL (``GPUBROKER_GATEWAY_INSTANCES``, a JSON list), for work
    each must do itself (cache warming); the gateway's own URL when there is no list."""
    raw = setting("GPUBROKER_GATEWAY_INSTANCES")
    if not raw:
        return [gateway_url()]
    try:
        urls = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MissingSetting(f"GPUBROKER_GATEWAY_INSTANCES is not a JSON list: {exc}") from None
    if not isinstance(urls, list) or not urls or not all(isinstance(url, str) for url in urls):
        raise MissingSetting("GPUBROKER_GATEWAY_INSTANCES must be a JSON list of base URLs")
    return [url.rstrip("/") for url in urls]


def service_token() -> str:
    """The platform service token (``gpubroker auth service-token airflow``), from
    ``GPUBROKER_SERVICE_TOKEN`` or, re-read on every call so that a rotated one is picked up,
    the file ``GPUBROKER_SERVICE_TOKEN_FILE`` names."""
    path = setting("GPUBROKER_SERVICE_TOKEN_FILE")
    if path:
        with open(path, encoding="utf-8") as file:
            return file.read().strip()
    return required("GPUBROKER_SERVICE_TOKEN")


def kafka_bootstrap() -> str:
    return required("GPUBROKER_KAFKA_BOOTSTRAP")


def allowed_networks() -> list[Network]:
    """Non-public networks webhooks may still be delivered to (``GPUBROKER_WEBHOOK_ALLOWED_NETWORKS``,
    a JSON list of CIDRs, as the gateway's setting): none unless set."""
    raw = setting("GPUBROKER_WEBHOOK_ALLOWED_NETWORKS") or "[]"
    try:
        return [ipaddress.ip_network(text) for text in json.loads(raw)]
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise MissingSetting(f"GPUBROKER_WEBHOOK_ALLOWED_NETWORKS is not a JSON list of CIDRs: {exc}") from None


def fx_source_url() -> str:
    return setting("GPUBROKER_FX_SOURCE_URL", FX_SOURCE_URL) or FX_SOURCE_URL
