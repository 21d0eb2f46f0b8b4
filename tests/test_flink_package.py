"""The analytics jobs run in Flink's environment, where only gpubroker.core is installed beside
them: they must never import the gateway or the workers."""

from __future__ import annotations

import ast
from pathlib import Path

JOBS = Path(__file__).resolve().parents[1] / "flink" / "gpubroker_flink"


def test_the_jobs_import_nothing_of_the_product_but_core() -> None:
    imported = set()
    for module in JOBS.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {(module.name, alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add((module.name, node.module))
    product = {(name, what) for name, what in imported if what.startswith("gpubroker.")}
    assert product, "the jobs read the product's envelopes through gpubroker.core"
    assert all(what.startswith("gpubroker.core") for _, what in product), sorted(product)
