"""The canonical GPU catalogue: every GPU family clouds sell, with its datasheet figures.

The data lives in ``catalog.toml`` beside this module so a contributor can add a card without
touching code. It is read and validated once, at import: a malformed entry stops start-up with an
error naming the entry, instead of silently mis-ranking offers later.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib.resources import files
from types import MappingProxyType
from typing import Any, Literal, cast, get_args

Vendor = Literal["nvidia", "amd", "intel", "google", "groq"]
GpuClass = Literal["datacenter", "workstation", "consumer", "accelerator"]
FormFactor = Literal["SXM", "PCIE", "NVL"]

_FIGURE_KEYS = ("fp16_tflops", "fp32_tflops", "bandwidth_gbs")
_FAMILY_KEYS = {
    "vendor",
    "compute_capability",
    "architecture",
    "class",
    "memory_gb",
    "aliases",
    "variants",
    *_FIGURE_KEYS,
}
_VARIANT_KEYS = {"memory_gb", "form_factor", "aliases", *_FIGURE_KEYS}
_COMPUTE_CAPABILITY = re.compile(r"([0-9]{1,2})\.([0-9])")
MEMORY_SLACK = 1.1
"""A stated memory size up to this factor above a family's largest datasheet size is believed
(GB against GiB, rounding); anything larger describes something else (a module's CPU memory, a
modified card, or MiB read as GB)."""


class CatalogError(ValueError):
    """``catalog.toml`` is malformed; the message names the entry and the key at fault."""


@dataclass(frozen=True, slots=True)
class Figures:
    """Datasheet performance of one GPU; ``None`` where the vendor publishes no figure.

    ``fp16_tflops`` is dense FP16/BF16 tensor (matrix) throughput, without sparsity, because that
    is what training and inference actually get; ``fp32_tflops`` is the non-tensor FP32 rate.
    """

    fp16_tflops: float | None = None
    fp32_tflops: float | None = None
    bandwidth_gbs: float | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    """The figures of one memory size and/or form factor of a family (``None`` means any).

    ``aliases`` are names that identify this variant, so they also imply its form factor.
    """

    memory_gb: int | None
    form_factor: FormFactor | None
    figures: Figures
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """One canonical GPU family. ``memory_gb`` lists every size it is sold with, ascending.

    It is empty only for an ``accelerator`` whose device memory is not a whole number of GB
    (Groq's LPU holds ~230 MB of on-chip SRAM and no DRAM): its memory is then always unknown.
    """

    name: str
    vendor: Vendor
    architecture: str
    gpu_class: GpuClass
    memory_gb: tuple[int, ...]
    variants: tuple[Variant, ...]
    aliases: tuple[str, ...] = ()
    compute_capability: tuple[int, int] | None = None
    """NVIDIA's CUDA compute capability (major, minor); ``None`` for other vendors."""

    @property
    def default_memory_gb(self) -> int | None:
        """The memory size when the family has only one, else ``None`` (several, or none in GB)."""
        return self.memory_gb[0] if len(self.memory_gb) == 1 else None

    @property
    def compute_capability_number(self) -> float | None:
        """The compute capability as one comparable number (8.6, 10.3): minors are single digits."""
        cc = self.compute_capability
        return None if cc is None else cc[0] + cc[1] / 10

    def plausible_memory(self, memory_gb: float) -> bool:
        """Whether a stated per-GPU memory size can be this family's.

        Anything above zero up to the largest datasheet size (plus ``MEMORY_SLACK``) is: providers
        state usable memory below the datasheet's (B300 at 268 GB of 288), and sell slices of a
        GPU (MIG, vGPU) with a fraction of it. A family with no size in whole GB believes none.
        """
        return bool(self.memory_gb) and 0 < memory_gb <= self.memory_gb[-1] * MEMORY_SLACK

    @property
    def form_factors(self) -> frozenset[FormFactor]:
        """The form factors the catalogue tells apart for this family (often none)."""
        return frozenset(v.form_factor for v in self.variants if v.form_factor is not None)

    def memory_options(self, form_factor: FormFactor | None = None) -> tuple[int, ...]:
        """The memory sizes sold in ``form_factor``: all of them when it is ``None`` or unknown."""
        if form_factor not in self.form_factors:
            return self.memory_gb
        sizes = {v.memory_gb for v in self.variants if v.form_factor == form_factor}
        return self.memory_gb if None in sizes else tuple(sorted(s for s in sizes if s is not None))

    def figures(self, memory_gb: int | None = None, form_factor: FormFactor | None = None) -> Figures:
        """The figures for a memory size and form factor, either or both of which may be unknown.

        Each figure is given only when every variant consistent with what is known agrees on it,
        so an unknown H100 form factor yields no FLOPS rather than the SXM's flattering ones.
        """
        matching = [
            v
            for v in self.variants
            if (memory_gb is None or v.memory_gb in (None, memory_gb))
            and (form_factor is None or v.form_factor in (None, form_factor))
        ] or list(self.variants)
        agreed: dict[str, float | None] = {}
        for key in _FIGURE_KEYS:
            values = {getattr(v.figures, key) for v in matching}
            agreed[key] = values.pop() if len(values) == 1 else None
        return Figures(**agreed)


def parse_catalog(text: str) -> Mapping[str, GpuSpec]:
    """Parse and validate catalogue TOML; raises ``CatalogError`` naming the first bad entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"catalog.toml is not valid TOML: {error}") from error
    specs: dict[str, GpuSpec] = {}
    folded: dict[str, str] = {}
    for name, table in data.items():
        where = f"catalog.toml [{name!r}]"
        if name != name.strip() or not name:
            raise CatalogError(f"{where}: the name must be non-empty with no surrounding spaces")
        if (other := folded.setdefault(name.casefold(), name)) != name:
            raise CatalogError(f"{where}: same name as [{other!r}] apart from case")
        specs[name] = _family(where, name, _table(where, table, _FAMILY_KEYS))
    return MappingProxyType(specs)


def _family(where: str, name: str, table: dict[str, Any]) -> GpuSpec:
    memory = table.get("memory_gb")
    # An empty list is allowed for an accelerator whose device memory is not whole GB (on-chip
    # SRAM only); a GPU always has memory to state, so an empty list there is a mistake.
    if (
        not isinstance(memory, list)
        or (not memory and table.get("class") != "accelerator")
        or not all(_is_size(m) for m in memory)
    ):
        raise CatalogError(
            f"{where}: memory_gb must be a non-empty list of positive whole GB "
            "(only class 'accelerator' may give [] when its device memory is not whole GB)"
        )
    if memory != sorted(set(memory)):
        raise CatalogError(f"{where}: memory_gb must be ascending without repeats")
    base = _figures(where, table, Figures())
    rows = table.get("variants", [])
    if not isinstance(rows, list):
        raise CatalogError(f"{where}: variants must be a list of inline tables")
    variants = tuple(_variant(f"{where} variants[{i}]", row, base, memory) for i, row in enumerate(rows))
    keys = [(v.memory_gb, v.form_factor) for v in variants]
    if len(set(keys)) != len(keys):
        raise CatalogError(f"{where}: two variants have the same memory_gb and form_factor")
    return GpuSpec(
        name=name,
        vendor=cast(Vendor, _choice(where, table, "vendor", get_args(Vendor))),
        architecture=_text(where, table, "architecture"),
        gpu_class=cast(GpuClass, _choice(where, table, "class", get_args(GpuClass))),
        memory_gb=tuple(memory),
        variants=variants or (Variant(None, None, base),),
        aliases=_aliases(where, table),
        compute_capability=_compute_capability(where, table),
    )


def _variant(where: str, row: object, base: Figures, family_memory: list[int]) -> Variant:
    table = _table(where, row, _VARIANT_KEYS)
    memory = table.get("memory_gb")
    if memory is not None and (not _is_size(memory) or memory not in family_memory):
        raise CatalogError(f"{where}: memory_gb {memory!r} is not one of the family's memory_gb")
    form_factor = _choice(where, table, "form_factor", get_args(FormFactor)) if "form_factor" in table else None
    if memory is None and form_factor is None:
        raise CatalogError(f"{where}: a variant needs memory_gb and/or form_factor")
    return Variant(
        memory,
        cast(FormFactor | None, form_factor),
        _figures(where, table, base),
        _aliases(where, table),
    )


def _compute_capability(where: str, table: dict[str, Any]) -> tuple[int, int] | None:
    value = table.get("compute_capability")
    if value is None:
        return None
    if table.get("vendor") != "nvidia":
        raise CatalogError(f"{where}: compute_capability is NVIDIA's; leave it out for other vendors")
    match = _COMPUTE_CAPABILITY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise CatalogError(f'{where}: compute_capability must be a string like "8.6", not {value!r}')
    return int(match[1]), int(match[2])


def _table(where: str, value: object, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: expected a table")
    if unknown := sorted(value.keys() - allowed):
        raise CatalogError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return value


def _figures(where: str, table: dict[str, Any], inherited: Figures) -> Figures:
    values: dict[str, float | None] = {}
    for field in fields(Figures):
        value = table.get(field.name, getattr(inherited, field.name))
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0
        ):
            raise CatalogError(f"{where}: {field.name} must be a positive number, not {value!r}")
        values[field.name] = None if value is None else float(value)
    return Figures(**values)


def _choice(where: str, table: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = table.get(key)
    if value not in allowed:
        raise CatalogError(f"{where}: {key} must be one of {', '.join(allowed)}, not {value!r}")
    return cast(str, value)


def _text(where: str, table: dict[str, Any], key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}: {key} must be a non-empty string")
    return value


def _aliases(where: str, table: dict[str, Any]) -> tuple[str, ...]:
    value = table.get("aliases", [])
    if not isinstance(value, list) or not all(isinstance(a, str) and a.strip() for a in value):
        raise CatalogError(f"{where}: aliases must be a list of non-empty strings")
    return tuple(value)


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


CATALOG: Mapping[str, GpuSpec] = parse_catalog(
    files(__name__.rpartition(".")[0]).joinpath("catalog.toml").read_text(encoding="utf-8")
)
_BY_FOLDED_NAME = {name.casefold(): spec for name, spec in CATALOG.items()}


def get(name: str) -> GpuSpec | None:
    """The family with this canonical name, ignoring case; ``None`` if there is none.

    Only canonical names are looked up; use ``resolve`` for the names providers write.
    """
    return _BY_FOLDED_NAME.get(name.strip().casefold())
