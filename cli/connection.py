"""Which gateway the commands over the API talk to, as whom, and how a failure is told.

The gateway: ``--url``, else ``GPUBROKER_URL``, else ``url`` in the config file, else the local
one (``http://127.0.0.1:8000``). The API key: ``GPUBROKER_API_KEY``, else ``api_key`` in the config
file (a key is a secret: it is never an option, so it stays out of shell history and process
lists). The config file is TOML at ``GPUBROKER_CONFIG``, else
``$XDG_CONFIG_HOME/gpubroker/config.toml`` (``~/.config/gpubroker/config.toml``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpubroker_client import (
    DEFAULT_URL,
    ApiError,
    AsyncClient,
    Client,
    GpubrokerError,
    InvalidRequest,
    RateLimited,
    RetryPolicy,
    Unauthorized,
    Unreachable,
)

EXIT_REFUSED = 1
"""The gateway answered with an error."""
EXIT_UNREACHABLE = 3


def config_path() -> Path:
    given = os.environ.get("GPUBROKER_CONFIG")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "gpubroker" / "config.toml"


class ConfigError(GpubrokerError):
    """The config file cannot be read."""


def read_config() -> dict[str, Any]:
    path = config_path()
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gateway")
    group.add_argument("--url", help=f"the gateway (default GPUBROKER_URL, the config file's url, or {DEFAULT_URL})")
    group.add_argument(
        "--retries", type=int, default=2, metavar="N", help="retry a 429 or 503 this many times (default 2)"
    )


def client_for(args: argparse.Namespace) -> Client:
    return Client(**_connection(args))


def async_client_for(args: argparse.Namespace) -> AsyncClient:
    return AsyncClient(**_connection(args))


def _connection(args: argparse.Namespace) -> dict[str, Any]:
    config = read_config()
    url = args.url or os.environ.get("GPUBROKER_URL") or config.get("url") or DEFAULT_URL
    key = os.environ.get("GPUBROKER_API_KEY") or config.get("api_key") or ""
    return {"url": url, "api_key": key, "retry": RetryPolicy(attempts=max(0, args.retries), max_wait_s=60)}


def over_the_api(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command over the API, turning each failure into one line on standard error."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except Unreachable as exc:
            _say(f"{exc} (is it running? `gpubroker up` starts one; --url or GPUBROKER_URL names another)")
            return EXIT_UNREACHABLE
        except ApiError as exc:
            _say(describe(exc))
            return EXIT_REFUSED
        except ConfigError as exc:
            _say(str(exc))
            return EXIT_REFUSED

    return run


def describe(exc: ApiError) -> str:
    """One line naming the problem and what to do about it."""
    if isinstance(exc, RateLimited):
        return f"rate limited (429): {exc.message}; retry after {exc.retry_after_s:g}s"
    if isinstance(exc, Unauthorized):
        return f"not signed in (401): {exc.message} (set GPUBROKER_API_KEY or api_key in {config_path()})"
    if isinstance(exc, InvalidRequest) and exc.field:
        return f"bad {exc.field.replace('_', '-')} ({exc.status}): {exc.message}"
    names = {403: "refused", 404: "not found", 503: "unavailable"}
    return f"{names.get(exc.status, 'error')} ({exc.status}): {exc.message}"


def _say(line: str) -> None:
    print(f"gpubroker: {line}", file=sys.stderr)
