"""``gpubroker-flink``: submit the analytics job to a Flink cluster, list and cancel jobs.

    gpubroker-flink submit --bootstrap 127.0.0.1:9092 [--analyses ...] [--from CHECKPOINT]
    gpubroker-flink jobs
    gpubroker-flink cancel JOB_ID

``submit`` runs Flink's own client (``flink run --python``) on the job program
(``gpubroker_flink.job``), detached, and prints the job's id. The cluster is the one the Flink
configuration in ``GPUBROKER_FLINK_CONF_DIR`` names (``scripts/services env`` sets it for the
local cluster), or ``--jobmanager host:port``. ``jobs`` and ``cancel`` speak to the REST API at
``GPUBROKER_FLINK_REST`` (or ``--rest``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pyflink

from gpubroker_flink import job
from gpubroker_flink.params import add_arguments, from_namespace

SUBMITTED = re.compile(r"Job has been submitted with JobID ([0-9a-f]{32})")
SUBMIT_TIMEOUT_S = 300


class CliError(Exception):
    """A problem the user can act on; printed without a traceback."""


def submit(ns: argparse.Namespace) -> str:
    params = from_namespace(ns)
    flink = Path(pyflink.__file__).parent / "bin" / "flink"
    command = [str(flink), "run", "--detached", "--python", job.__file__]
    if ns.jobmanager:
        command += ["--jobmanager", ns.jobmanager]
    if ns.from_checkpoint:
        command += ["--fromSavepoint", ns.from_checkpoint]
    env = dict(os.environ)
    for name in ("CONF_DIR", "LIB_DIR"):
        if os.environ.get(f"GPUBROKER_FLINK_{name}"):
            env[f"FLINK_{name}"] = os.environ[f"GPUBROKER_FLINK_{name}"]
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        done = subprocess.run(
            [*command, *params.argv()], env=env, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise CliError(f"flink run did not finish within {SUBMIT_TIMEOUT_S}s") from None
    found = SUBMITTED.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise CliError(f"flink run failed (exit {done.returncode}): {_reason(done.stdout + done.stderr)}")
    return found.group(1)


def rest(base: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(base.rstrip("/") + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            body = str(json.loads(body)["errors"][0])  # Flink's REST errors: {"errors": [...]}
        raise CliError(f"{method} {path}: HTTP {exc.code}: {_reason(body)}") from None
    except OSError as exc:
        raise CliError(f"cannot reach the Flink REST API at {base}: {exc}") from None
    return json.loads(body) if body else None


def _reason(output: str) -> str:
    """The root cause in Flink's output (the last ``Caused by``, else the first line naming an
    error), not the Java stack trace around it."""
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by: ")]
    if causes:
        return causes[-1]
    named = [line for line in lines if "Exception" in line or "Error" in line or "error" in line]
    return (named or lines or ["no output"])[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpubroker-flink", description="GPUBROKER stream analytics on Flink")
    parser.add_argument("--rest", default=os.environ.get("GPUBROKER_FLINK_REST", "http://127.0.0.1:8081"))
    commands = parser.add_subparsers(dest="command", required=True)
    submit_parser = commands.add_parser("submit", help="submit the analytics job (detached); prints its id")
    add_arguments(submit_parser)
    submit_parser.add_argument("--jobmanager", help="host:port of the JobManager's REST API (default: the config's)")
    submit_parser.add_argument("--from", dest="from_checkpoint", help="restore from this checkpoint or savepoint path")
    commands.add_parser("jobs", help="list the cluster's jobs: id, state, name")
    cancel_parser = commands.add_parser("cancel", help="cancel a job (its last checkpoint is kept)")
    cancel_parser.add_argument("job_id")
    ns = parser.parse_args(argv)
    try:
        if ns.command == "submit":
            print(submit(ns))
        elif ns.command == "jobs":
            for item in rest(ns.rest, "/jobs/overview")["jobs"]:
                print(f"{item['jid']}  {item['state']:<10}  {item['name']}")
        else:
            rest(ns.rest, f"/jobs/{ns.job_id}?mode=cancel", method="PATCH")
    except CliError as exc:
        print(f"gpubroker-flink: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
