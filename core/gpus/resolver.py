"""Turns the GPU names providers write into the catalogue's canonical families.

Providers write one card many ways: ``NVIDIA A100-SXM4-80GB``, ``a100_80gb``, ``1x A100 (80 GB
SXM4)``. A name is read in steps, and every catalogue name and alias is read the same way, so the
two always agree:

1. Case-fold it and split it into tokens at anything that is not a letter or a digit.
2. Drop GPU counts (``8x``, ``x8``); take out memory sizes (``80GB``, ``80G``, ``80 GB``,
   ``80GiB``).
3. Split tokens into letter and digit runs (``rtx4090`` is ``rtx 4090``). A letter run that is not
   a known word but is made of known words is split too (``rtxa6000`` is ``rtx a 6000``).
   ``s`` means SUPER (``4080S``).
4. Take out form-factor markers (``SXM4``, ``PCIe``, ``PCI-E``, ``NVL``; ``HGX``/``DGX`` mean SXM)
   and vendor words (NVIDIA, GeForce, Tesla, Quadro, AMD, Radeon, Instinct, Intel, Habana, Google,
   Groq, Cloud). ``NVLink`` is a bridge, not a form factor: ``H100-80G-PCIe-NVLink`` is a PCIe card.
5. The family is the longest catalogue name or alias found as a run of the words left that ends
   at the end of a token, so ``A10G`` is not ``A10``, ``L40S`` not ``L40`` and ``4090D`` not
   ``4090``. If a different family also matches outside that run, the name is unknown: the
   resolver never guesses.

A count glued to the end of a name (``H100x8``, ``L40Sx10``, ``A100-80Gx8``) is taken out too, and
a whole name that is a Google TPU version or slice (``v2``, ``v2-8``, ``v4-32``, ``v5litepod-4``,
``v6e-8``: version, then chips or cores) names that TPU generation. Within a longer name a bare
``v2`` or ``v4`` is a version suffix (``Standard_ND40rs_v2``), never a TPU.

Memory: a stated size is kept when it can be the family's (``GpuSpec.plausible_memory``: up to
its largest datasheet size): providers state the usable memory, which is often below the
datasheet's (``B300 268GB``), and sell slices of a GPU with a fraction of it. A larger size
describes something else and gives an unknown memory (``GH200 480GB`` states the Grace CPU's
memory too, ``H100x8-640gb`` the instance's). Of several stated sizes, one the family is sold
with wins. With no size stated, the memory is the family's only size, or the only size of the
stated form factor (``H100 NVL`` is 94 GB). A family with no size in whole GB (Groq's LPU,
on-chip SRAM only) always gives an unknown memory.

Form factor: what the name states (``SXM5``, ``-sxm-``, ``_PCIE_``, ``pcie-48gb``; ``HGX``/``DGX``
mean SXM) or an alias implies, for any family. ``NVL`` is reported only for families sold as an
NVL card (H100 NVL, H200 NVL; in ``GB200 NVL72`` it names a rack), and wins over ``PCIe`` (the
H100 NVL is a PCIe card); SXM and PCIe together are contradictory and give none.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from gpubroker.core.gpus.catalog import CATALOG, CatalogError, FormFactor, GpuSpec, Vendor

_TOKEN = re.compile(r"[a-z0-9]+")
_RUN = re.compile(r"[a-z]+|[0-9]+")
_COUNT = re.compile(r"[0-9]{1,2}x|x[0-9]{1,2}")
_GLUED_COUNT = re.compile(r"[0-9]{1,2}x(?=[a-z])")
_MEMORY = re.compile(r"([0-9]{1,5})(?:gb|gib|g|vram)")
_TRAILING_COUNT = re.compile(r"(?<=[a-z0-9])x[0-9]{1,2}$")
_TPU_SLICE = re.compile(r"(?:(?:google|cloud)[\s_-]+)*(?:tpu[\s_-]*)?(v2|v3|v4|v5p|v5e|v5litepod|v6e)(?:-[0-9]{1,5})?")
_TPU_GENERATIONS = {"v5litepod": "v5e"}
_UNITS = frozenset({"gb", "gib", "g"})
_VENDOR_WORDS = frozenset(
    ["nvidia", "geforce", "tesla", "quadro", "amd", "radeon", "instinct", "intel", "habana", "google", "groq", "cloud"]
)
_MARKERS: dict[str, FormFactor] = {
    "sxm": "SXM",
    "hgx": "SXM",
    "dgx": "SXM",
    "pcie": "PCIE",
    "pci": "PCIE",
    "nvl": "NVL",
}
_SYNONYMS = {"s": "super"}
_LONGEST_SPLIT_RUN = 40


@dataclass(frozen=True, slots=True)
class GpuMatch:
    """What a raw GPU name says: all ``None`` (but ``raw``) when the name is not recognised."""

    raw: str
    gpu_type: str | None = None
    memory_gb: int | None = None
    form_factor: FormFactor | None = None
    vendor: Vendor | None = None
    nvlink: bool = False
    """The name says the GPUs are linked by NVLink (``H100-80G-PCIe-NVLink``, ``H100x8-NVLINK``)."""

    @property
    def spec(self) -> GpuSpec | None:
        """The catalogue entry of the family, if the name was recognised."""
        return None if self.gpu_type is None else CATALOG[self.gpu_type]

    def to_dict(self) -> dict[str, str | int | None]:
        """The match as plain JSON-ready data (what the CLI prints and offers carry)."""
        return {
            "raw": self.raw,
            "gpu_type": self.gpu_type,
            "memory_gb": self.memory_gb,
            "form_factor": self.form_factor,
            "vendor": self.vendor,
            "nvlink": self.nvlink,
        }


class _Reading(NamedTuple):
    words: tuple[str, ...]
    ends: frozenset[int]  # indexes of words that end a token (or precede a word or count taken out)
    memory: tuple[int, ...]
    markers: frozenset[FormFactor]
    nvlink: bool


class _Alias(NamedTuple):
    words: tuple[str, ...]
    family: str
    form_factor: FormFactor | None


class _Matcher:
    """Reads names into words and finds the catalogue family they name."""

    def __init__(self, catalog: Mapping[str, GpuSpec]) -> None:
        names: list[tuple[str, str, FormFactor | None]]
        names = [(spec.name, n, None) for spec in catalog.values() for n in (spec.name, *spec.aliases)]
        names += [(spec.name, a, v.form_factor) for spec in catalog.values() for v in spec.variants for a in v.aliases]
        self._vocabulary = frozenset(
            {w for _, text, _ in names for w in re.findall(r"[a-z]+", text.casefold())}
            | _VENDOR_WORDS
            | _MARKERS.keys()
        )
        by_words: dict[tuple[str, ...], _Alias] = {}
        for family, text, form_factor in names:
            alias = _Alias(self.read(text).words, family, form_factor)
            if not alias.words:
                raise CatalogError(
                    f"catalog.toml [{family!r}]: {text!r} has no name left once vendor words, "
                    "memory and form factor are taken out"
                )
            if (other := by_words.setdefault(alias.words, alias)) != alias:
                raise CatalogError(
                    f"catalog.toml [{family!r}]: {text!r} reads the same as a name of [{other.family!r}]"
                )
        self._index: dict[str, list[_Alias]] = {}
        for alias in by_words.values():
            self._index.setdefault(alias.words[0], []).append(alias)

    def read(self, text: str) -> _Reading:
        tokens = _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
        pieces: list[tuple[str, int]] = []  # (run, token number)
        soft_ends: set[int] = set()  # pieces that end a name before a glued count
        memory: list[int] = []
        number = 0
        while number < len(tokens):
            token = tokens[number]
            number += 1
            if _COUNT.fullmatch(token):
                continue
            if size := _MEMORY.fullmatch(token):
                memory.append(int(size[1]))
                continue
            if token.isdigit() and len(token) <= 5 and number < len(tokens) and tokens[number] in _UNITS:
                memory.append(int(token))
                number += 1
                continue
            if count := _GLUED_COUNT.match(token):
                token = token[count.end() :]
            if trailing := _TRAILING_COUNT.search(token):
                token = token[: trailing.start()]
                if size := _MEMORY.fullmatch(token):  # A100-80Gx8
                    memory.append(int(size[1]))
                    continue
                if token[-1].isdigit():  # H100x8, or MI300x8 where the x is the name's own
                    pieces += [(word, number) for run in _RUN.findall(token) for word in self._split(run)]
                    soft_ends.add(len(pieces) - 1)
                    token = "x"
            pieces += [(word, number) for run in _RUN.findall(token) for word in self._split(run)]
        markers: set[FormFactor] = set()
        kept = [self._keep(pieces, i, markers) for i in range(len(pieces))]
        words: list[str] = []
        ends: set[int] = set()
        for i, (word, number) in enumerate(pieces):
            if not kept[i]:
                continue
            words.append(_SYNONYMS.get(word, word))
            if i + 1 == len(pieces) or pieces[i + 1][1] != number or not kept[i + 1] or i in soft_ends:
                ends.add(len(words) - 1)
        nvlink = any(word == "nvlink" for word, _ in pieces)
        return _Reading(tuple(words), frozenset(ends), tuple(memory), frozenset(markers), nvlink)

    def find(self, reading: _Reading) -> _Alias | None:
        words = reading.words
        found: list[tuple[int, int, _Alias]] = []
        for start, word in enumerate(words):
            for alias in self._index.get(word, ()):
                stop = start + len(alias.words)
                if stop - 1 in reading.ends and words[start:stop] == alias.words:
                    found.append((start, stop, alias))
        if not found:
            return None
        start, stop, best = max(found, key=lambda f: (len(f[2].words), sum(map(len, f[2].words))))
        for other_start, other_stop, other in found:
            if other.family != best.family and not start <= other_start < other_stop <= stop:
                return None
        return best

    def _split(self, run: str) -> list[str]:
        """A letter run split into known words, fewest first; single letters only at the end."""
        if run.isdigit() or run in self._vocabulary or len(run) > _LONGEST_SPLIT_RUN:
            return [run]
        best: list[list[str] | None] = [[]] + [None] * len(run)
        for stop in range(1, len(run) + 1):
            for start in range(stop):
                head, word = best[start], run[start:stop]
                if head is None or word not in self._vocabulary or (len(word) == 1 and stop < len(run)):
                    continue
                if (current := best[stop]) is None or len(head) + 1 < len(current):
                    best[stop] = [*head, word]
        return best[-1] or [run]

    @staticmethod
    def _keep(pieces: list[tuple[str, int]], i: int, markers: set[FormFactor]) -> bool:
        word, number = pieces[i]
        previous, previous_number = pieces[i - 1] if i else ("", -1)
        if word in _MARKERS:
            markers.add(_MARKERS[word])
            return False
        if word.isdigit() and previous in ("sxm", "nvl") and previous_number == number:
            return False  # the generation in SXM4 or the domain size in NVL72
        return not (word == "e" and previous == "pci") and word not in _VENDOR_WORDS


_MATCHER = _Matcher(CATALOG)


@functools.lru_cache(maxsize=8192)
def resolve(raw: str) -> GpuMatch:
    """The canonical family, memory, form factor and vendor a raw provider GPU name states.

    Pure and cached: it runs for every offer of every poll. An unrecognised name gives a
    ``GpuMatch`` with everything but ``raw`` set to ``None``.
    """
    reading = _MATCHER.read(_tpu_generation(raw))
    alias = _MATCHER.find(reading)
    if alias is None:
        return GpuMatch(raw)
    spec = CATALOG[alias.family]
    stated = reading.markers | {alias.form_factor} if alias.form_factor else reading.markers
    if "NVL" in stated and "NVL" not in spec.form_factors:
        stated = stated - {"NVL"}
    form_factor: FormFactor | None = "NVL" if "NVL" in stated else next(iter(stated)) if len(stated) == 1 else None
    if reading.memory:
        plausible = [m for m in reading.memory if spec.plausible_memory(m)]
        memory = next((m for m in plausible if m in spec.memory_gb), plausible[-1] if plausible else None)
    else:
        options = spec.memory_options(form_factor)
        memory = options[0] if len(options) == 1 else None
    return GpuMatch(raw, spec.name, memory, form_factor, spec.vendor, reading.nvlink)


def _tpu_generation(raw: str) -> str:
    """A TPU version or slice name (``v2``, ``v2-8``, ``tpu-v5litepod-4``) as its generation (``TPU v2``)."""
    slice_name = _TPU_SLICE.fullmatch(raw.strip().casefold())
    if slice_name is None:
        return raw
    return "TPU " + _TPU_GENERATIONS.get(slice_name[1], slice_name[1])
