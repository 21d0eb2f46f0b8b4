"""``gpubroker plugin new NAME``: a working provider plugin to start from.

The generated package passes the conformance suite as it is (an example paged JSON API with
recordings), so an author changes a working plugin into theirs step by step, with the tests
telling them what broke.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from gpubroker.core.errors import GpubrokerError

NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def new_plugin(name: str, plugins_dir: Path, display_name: str | None = None) -> Path:
    """Write ``plugins_dir/name`` and return it; refuses bad names and existing folders."""
    if not NAME.match(name):
        raise GpubrokerError(
            f"plugin name {name!r} must be 2-40 lowercase letters, digits or underscores, starting with a letter"
        )
    target = plugins_dir / name
    if target.exists():
        raise GpubrokerError(f"{target} already exists; choose another name or remove it")
    values = {
        "name": name,
        "display_name": display_name or name.replace("_", " ").title(),
        "class_name": "".join(part.capitalize() for part in name.split("_")) + "Adapter",
        "captured_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
    }
    template = files(__package__).joinpath("plugin-template")
    package = target / f"gpubroker_{name}"
    layout = {
        "pyproject.toml.tmpl": target / "pyproject.toml",
        "README.md.tmpl": target / "README.md",
        "__init__.py.tmpl": package / "__init__.py",
        "adapter.py.tmpl": package / "adapter.py",
        "test_plugin.py.tmpl": target / "tests" / f"test_{name}.py",
    }
    for source, destination in layout.items():
        _write(template.joinpath(source), destination, values)
    for folder in ("recordings", "schemas"):
        for item in template.joinpath(folder).iterdir():
            _write(item, package / folder / item.name.removesuffix(".tmpl"), values)
    return target


def _write(source: Traversable, destination: Path, values: dict[str, str]) -> None:
    text = source.read_text()
    if source.name.endswith(".tmpl"):
        text = string.Template(text).substitute(values)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(text)
