"""How well the resolver reads a labelled set of real GPU names: family, stated memory, form factor.

The set is a CSV file (``#`` lines are comments) with the columns ``name``, ``family``,
``memory_gb``, ``form_factor`` and ``source``: each name as a public catalogue or a provider's
documentation writes it, what the string states, and where it comes from. A blank ``family``
means the catalogue must not resolve the name; a blank ``memory_gb`` or ``form_factor`` means the
string states none (or states a memory that is not one GPU's, such as the instance's), so the
row is left out of that score.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from gpubroker.core.gpus.catalog import CATALOG
from gpubroker.core.gpus.resolver import GpuMatch, resolve

COLUMNS = ("name", "family", "memory_gb", "form_factor", "source")
FORM_FACTORS = ("SXM", "PCIE", "NVL")


class LabelError(ValueError):
    """The labelled set is malformed; the message names the line and the field."""


@dataclass(frozen=True, slots=True)
class Label:
    line: int
    name: str
    family: str | None
    memory_gb: int | None
    form_factor: str | None
    source: str


@dataclass
class Score:
    """Right answers out of the rows that state each thing, and the rows that were missed."""

    family: tuple[int, int] = (0, 0)
    memory: tuple[int, int] = (0, 0)
    form_factor: tuple[int, int] = (0, 0)
    misses: list[tuple[Label, GpuMatch, str]] = field(default_factory=list)

    @staticmethod
    def share(counts: tuple[int, int]) -> float:
        right, total = counts
        return right / total if total else 1.0


def read_labels(text: str) -> list[Label]:
    """Parse the labelled CSV; raises ``LabelError`` naming the first bad line."""
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if not line.startswith("#")]
    rows = csv.reader(io.StringIO("\n".join(line for _, line in lines)))
    header = next(rows, None)
    if header is None or tuple(header) != COLUMNS:
        raise LabelError(f"the header must be {','.join(COLUMNS)}, not {','.join(header or [])!r}")
    labels = []
    for (number, _), row in zip(lines[1:], rows, strict=True):
        if len(row) != len(COLUMNS):
            raise LabelError(f"line {number}: expected {len(COLUMNS)} fields, found {len(row)}")
        name, family, memory, form_factor, source = row
        if not name.strip() or not source.strip():
            raise LabelError(f"line {number}: name and source must not be blank")
        if family and family not in CATALOG:
            raise LabelError(f"line {number}: family {family!r} is not a catalogue name")
        if memory and not (memory.isdigit() and int(memory) > 0):
            raise LabelError(f"line {number}: memory_gb must be a whole number of GB, not {memory!r}")
        if form_factor and form_factor not in FORM_FACTORS:
            raise LabelError(
                f"line {number}: form_factor must be one of {', '.join(FORM_FACTORS)}, not {form_factor!r}"
            )
        labels.append(Label(number, name, family or None, int(memory) if memory else None, form_factor or None, source))
    return labels


def score(labels: list[Label]) -> Score:
    """Family over every row; memory and form factor over the rows whose string states them."""
    family, memory, form_factor = [0, 0], [0, 0], [0, 0]
    result = Score()
    for label in labels:
        match = resolve(label.name)
        checks = [("family", family, match.gpu_type == label.family)]
        if label.memory_gb is not None:
            checks.append(("memory", memory, match.memory_gb == label.memory_gb))
        if label.form_factor is not None:
            checks.append(("form factor", form_factor, match.form_factor == label.form_factor))
        for what, counts, right in checks:
            counts[0] += right
            counts[1] += 1
            if not right:
                result.misses.append((label, match, what))
    result.family, result.memory, result.form_factor = (
        (family[0], family[1]),
        (memory[0], memory[1]),
        (form_factor[0], form_factor[1]),
    )
    return result


def score_file(path: Path) -> Score:
    return score(read_labels(path.read_text(encoding="utf-8")))
