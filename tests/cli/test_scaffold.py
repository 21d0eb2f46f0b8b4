"""``gpubroker plugin new`` makes a package that installs and passes the conformance suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def test_generated_plugin_installs_lists_and_passes_conformance(tmp_path: Path) -> None:
    created = subprocess.run(
        [BIN / "gpubroker", "plugin", "new", "acme_cloud", "--display-name", "Acme Cloud", "--dir", str(tmp_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    plugin = tmp_path / "acme_cloud"
    assert str(plugin) in created.stdout
    config = Path(__file__).resolve().parents[2] / "pyproject.toml"
    for check in (["check"], ["format", "--check"]):  # generated code meets the project's own style
        lint = subprocess.run([BIN / "ruff", *check, "--config", config, plugin], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", site, plugin], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")} | {"PYTHONPATH": str(site)}

    listed = subprocess.run([BIN / "gpubroker", "plugins", "list"], env=env, capture_output=True, text=True)
    assert "acme_cloud" in listed.stdout and "Acme Cloud" in listed.stdout

    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin / "tests")],
        env=env, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "failed" not in tests.stdout and " passed" in tests.stdout


def test_bad_names_and_existing_folders_are_refused(tmp_path: Path) -> None:
    bad = subprocess.run(
        [BIN / "gpubroker", "plugin", "new", "Acme-Cloud", "--dir", str(tmp_path)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "plugin name 'Acme-Cloud'" in bad.stderr
    (tmp_path / "taken").mkdir()
    taken = subprocess.run(
        [BIN / "gpubroker", "plugin", "new", "taken", "--dir", str(tmp_path)], capture_output=True, text=True
    )
    assert taken.returncode == 2 and "already exists" in taken.stderr
