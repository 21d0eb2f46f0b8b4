"""FR-10.6: Celery is nowhere: not installed, not required, not imported, not configured. Every
background task is an Airflow DAG (LocalExecutor here, KubernetesExecutor in the cluster).
``tests/dags/test_airflow.py`` checks Airflow's own environment the same way."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CELERY = re.compile(r"\bcelery\b", re.IGNORECASE)
MENTIONS_ALLOWED = {"tests/test_no_celery.py", "tests/dags/test_airflow.py"}
"""Files that name Celery only to check it is absent (and prose that says so)."""


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / name for name in listed.splitlines() if (REPO / name).is_file()]


def test_no_celery_distribution_is_installed_or_required() -> None:
    names = {dist.metadata["Name"].lower() for dist in importlib.metadata.distributions()}
    assert not names & {"celery", "django-celery-beat", "django-celery-results", "flower"}
    for dist in importlib.metadata.distributions():
        required = [r for r in dist.requires or () if CELERY.search(r.split(";")[0])]
        assert not required, f"{dist.metadata['Name']} requires {required}"


def test_no_code_or_configuration_uses_celery() -> None:
    offending = []
    for path in tracked_files():
        relative = path.relative_to(REPO).as_posix()
        if relative in MENTIONS_ALLOWED or path.suffix in (".md", ".csv", ".json"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if CELERY.search(line) and not line.lstrip().startswith("#"):
                offending.append(f"{relative}:{number}: {line.strip()}")
    assert offending == [], "\n".join(offending)
