"""The GPU catalogue and the resolver from providers' GPU names to canonical families."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.gpus import CATALOG, GpuMatch, GpuSpec, UnknownGpuNames, get, resolve
from gpubroker.core.gpus.catalog import CatalogError, Figures, parse_catalog
from gpubroker.core.gpus.resolver import _Matcher

# raw name -> (gpu_type, memory_gb, form_factor)
EXAMPLES: dict[str, tuple[str, int | None, str | None]] = {
    # A100: memory and form factor in any order and spelling
    "A100-80GB-SXM": ("A100", 80, "SXM"),
    "NVIDIA A100-SXM4-80GB": ("A100", 80, "SXM"),
    "NVIDIA A100-SXM4-40GB": ("A100", 40, "SXM"),
    "A100 PCIE 40GB": ("A100", 40, "PCIE"),
    "A100 PCIE": ("A100", None, "PCIE"),
    "NVIDIA A100 80GB PCIe": ("A100", 80, "PCIE"),
    "A100-PCI-E-40GB": ("A100", 40, "PCIE"),
    "a100_80gb": ("A100", 80, None),
    "80GB A100": ("A100", 80, None),
    "A100 80 GB": ("A100", 80, None),
    "A100-80G": ("A100", 80, None),
    "A100 80GiB": ("A100", 80, None),
    "A100": ("A100", None, None),
    "A100 SXM4": ("A100", None, "SXM"),
    "DGX A100": ("A100", None, "SXM"),
    "gpu_1x_a100_sxm4": ("A100", None, "SXM"),
    "nvidia-tesla-a100": ("A100", None, None),
    "Standard_NC24ads_A100_v4": ("A100", None, None),
    "A800 80GB PCIe": ("A800", 80, "PCIE"),
    # H100: SXM, PCIe (with or without an NVLink bridge) and the distinct 94 GB NVL card
    "NVIDIA H100 80GB HBM3": ("H100", 80, "SXM"),
    "H100 SXM5": ("H100", 80, "SXM"),
    "H100SXM5": ("H100", 80, "SXM"),
    "1x H100 (80 GB SXM5)": ("H100", 80, "SXM"),
    "8x H100 SXM": ("H100", 80, "SXM"),
    "8xH100": ("H100", None, None),
    "gpu_8x_h100_sxm5": ("H100", 80, "SXM"),
    "HGX H100": ("H100", 80, "SXM"),
    "H100-80G-PCIe-NVLink": ("H100", 80, "PCIE"),
    "NVIDIA H100 PCIe": ("H100", 80, "PCIE"),
    "H100 NVL": ("H100", 94, "NVL"),
    "NVIDIA H100 NVL 94GB": ("H100", 94, "NVL"),
    "H100 NVL PCIe": ("H100", 94, "NVL"),
    "H100 SXM PCIe": ("H100", None, None),
    "H100 94GB": ("H100", 94, None),
    "nvidia-h100-mega-80gb": ("H100", 80, None),
    "H100": ("H100", None, None),
    "H800 PCIe": ("H800", 80, "PCIE"),
    "NVIDIA H200": ("H200", 141, None),
    "H200 NVL": ("H200", 141, "NVL"),
    "nvidia-h200-141gb": ("H200", 141, None),
    "H20": ("H20", 96, None),
    # GH200: module (CPU) memory is not GPU memory
    "GH200 480GB": ("GH200", None, None),
    "NVIDIA GH200 144GB HBM3e": ("GH200", 144, None),
    "gpu_1x_gh200": ("GH200", None, None),
    "B200": ("B200", None, None),
    "NVIDIA HGX B200 180GB": ("B200", 180, "SXM"),
    "B200 SXM6": ("B200", None, "SXM"),
    "NVIDIA B300 SXM6 AC 268GB": ("B300", 268, "SXM"),  # usable memory, below the datasheet's 288 GB
    "GB200 NVL72": ("GB200", None, None),
    "B300": ("B300", None, None),
    "GB300": ("GB300", None, None),
    # the three RTX 6000 cards, and other workstation names
    "RTX6000-Ada": ("RTX 6000 Ada", 48, None),
    "RTX 6000Ada": ("RTX 6000 Ada", 48, None),  # as Vast.ai writes it
    "RTX 6000 Ada Generation": ("RTX 6000 Ada", 48, None),
    "NVIDIA RTX 6000 Ada": ("RTX 6000 Ada", 48, None),
    "RTX 6000": ("RTX 6000", 24, None),
    "Quadro RTX 6000": ("RTX 6000", 24, None),
    "RTX PRO 6000 Blackwell Server Edition": ("RTX PRO 6000 Server", 96, None),
    "RTX PRO Server 6000": ("RTX PRO 6000 Server", 96, None),
    "RTX-PRO6000": ("RTX PRO 6000", 96, None),
    "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition": ("RTX PRO 6000", 96, None),
    "RTX PRO 6000": ("RTX PRO 6000", 96, None),
    "RTXA6000": ("RTX A6000", 48, None),
    "RTX A6000": ("RTX A6000", 48, None),
    "A6000": ("RTX A6000", 48, None),
    "gpu_1x_a6000": ("RTX A6000", 48, None),
    "RTX A4000": ("RTX A4000", 16, None),
    "RTX A2000 12GB": ("RTX A2000", 12, None),
    "NVIDIA RTX 4000 SFF Ada Generation": ("RTX 4000 SFF Ada", 20, None),
    "RTX 4000 Ada SFF": ("RTX 4000 SFF Ada", 20, None),
    "NVIDIA RTX 4000 Ada Generation": ("RTX 4000 Ada", 20, None),
    "RTX4000": ("RTX 4000", 8, None),
    "RTX5000": ("RTX 5000", 16, None),
    "Quadro RTX 8000": ("RTX 8000", 48, None),
    "Quadro P4000": ("P4000", 8, None),
    "P5000": ("P5000", 16, None),
    "Quadro M4000": ("M4000", 8, None),
    "Quadro P2000": ("P2000", 5, None),
    "TITAN RTX": ("Titan RTX", 24, None),
    "NVIDIA TITAN V": ("Titan V", 12, None),
    # consumer
    "RTX 4090": ("RTX 4090", 24, None),
    "GeForce RTX 4090": ("RTX 4090", 24, None),
    "NVIDIA GeForce RTX 4090": ("RTX 4090", 24, None),
    "rtx_4090": ("RTX 4090", 24, None),
    "4090": ("RTX 4090", 24, None),
    "2x RTX 4090": ("RTX 4090", 24, None),
    "RTX 4090 24GB": ("RTX 4090", 24, None),
    "RTX 4090 48GB": ("RTX 4090", None, None),
    "RTX 4090 PCIe": ("RTX 4090", 24, "PCIE"),
    "RTX4090x8": ("RTX 4090", 24, None),
    "L40S-pcie-48gb": ("L40S", 48, "PCIE"),
    "hyperstack_H100x8-NVLINK": ("H100", None, None),
    "paperspace_A100-sxm4-80Gx8": ("A100", 80, "SXM"),
    "gpu-mi300x8-1536gb": ("MI300X", None, None),
    "vcg-a100-1c-6g-4vram": ("A100", 4, None),  # a slice of an A100 (vGPU)
    "RTX 4090D": ("RTX 4090 D", 24, None),
    "RTX 4080S": ("RTX 4080 SUPER", 16, None),
    "RTX 4080 SUPER": ("RTX 4080 SUPER", 16, None),
    "RTX 4080": ("RTX 4080", 16, None),
    "RTX 4070 Ti SUPER": ("RTX 4070 Ti SUPER", 16, None),
    "RTX 4070 Ti": ("RTX 4070 Ti", 12, None),
    "RTX 4060 Ti 16GB": ("RTX 4060 Ti", 16, None),
    "RTX 3090 Ti": ("RTX 3090 Ti", 24, None),
    "RTX 3080": ("RTX 3080", None, None),
    "RTX 3080 10GB": ("RTX 3080", 10, None),
    "RTX 2080S": ("RTX 2080 SUPER", 8, None),
    "RTX 2080 Ti": ("RTX 2080 Ti", 11, None),
    "GTX 1080 Ti": ("GTX 1080 Ti", 11, None),
    "GeForce GTX 1660 SUPER": ("GTX 1660 SUPER", 6, None),
    "RTX 5090": ("RTX 5090", 32, None),
    "RTX 5060 Ti": ("RTX 5060 Ti", None, None),
    "GeForce RTX 5060": ("RTX 5060", 8, None),
    # older data centre
    "Tesla V100-SXM2-16GB": ("V100", 16, "SXM"),
    "Tesla V100-PCIE-32GB": ("V100", 32, "PCIE"),
    "V100 32GB": ("V100", 32, None),
    "V100": ("V100", None, None),
    "Tesla V100S-PCIE-32GB": ("V100S", 32, "PCIE"),
    "Tesla P100-PCIE-12GB": ("P100", 12, "PCIE"),
    "P100 SXM2": ("P100", 16, "SXM"),
    "Tesla T4": ("T4", 16, None),
    "nvidia-tesla-t4": ("T4", 16, None),
    "T4G": ("T4", 16, None),
    "Tesla K80": ("K80", 12, None),
    "Tesla M60": ("M60", 8, None),
    "Tesla P40": ("P40", 24, None),
    "Tesla P4": ("P4", 8, None),
    "L40S": ("L40S", 48, None),
    "NVIDIA L40S-48GB": ("L40S", 48, None),
    "L40": ("L40", 48, None),
    "L4": ("L4", 24, None),
    "nvidia-l4": ("L4", 24, None),
    "L20": ("L20", 48, None),
    "A10G": ("A10G", 24, None),
    "NVIDIA A10G": ("A10G", 24, None),
    "A10": ("A10", 24, None),
    "gpu_1x_a10": ("A10", 24, None),
    "A40": ("A40", 48, None),
    "A30": ("A30", 24, None),
    "A16": ("A16", 16, None),
    "NVIDIA A2": ("A2", 16, None),
    # AMD
    "Instinct MI300X": ("MI300X", 192, None),
    "AMD Instinct MI300X": ("MI300X", 192, None),
    "AMD MI300X OAM": ("MI300X", 192, None),
    "8x MI300X": ("MI300X", 192, None),
    "MI300A": ("MI300A", 128, None),
    "MI325X": ("MI325X", 256, None),
    "MI355X": ("MI355X", 288, None),
    "AMD Instinct MI350X": ("MI350X", 288, None),
    "Radeon Instinct MI25": ("MI25", 16, None),
    "MI50 32GB": ("MI50", 32, None),
    "MI250": ("MI250", 128, None),
    "MI250X": ("MI250X", 128, None),
    "MI210": ("MI210", 64, None),
    "MI100": ("MI100", 32, None),
    "AMD Radeon PRO W7900": ("W7900", 48, None),
    "Radeon Pro W7800 48GB": ("W7800", 48, None),
    "AMD Radeon RX 7900 XTX": ("RX 7900 XTX", 24, None),
    # Intel
    "Gaudi2": ("Gaudi 2", 96, None),
    "Intel Gaudi 2": ("Gaudi 2", 96, None),
    "HL-225": ("Gaudi 2", 96, None),
    "HL-225H": ("Gaudi 2", 96, None),
    "Habana Gaudi": ("Gaudi", 32, None),
    "Gaudi3": ("Gaudi 3", 128, None),
    "HL-325L": ("Gaudi 3", 128, None),
    "Intel Data Center GPU Max 1550": ("Max 1550", 128, None),
    "Intel Max 1100": ("Max 1100", 48, None),
    # Google
    "tpu-v5-lite-podslice": ("TPU v5e", 16, None),
    "v5litepod": ("TPU v5e", 16, None),
    "v5litepod-8": ("TPU v5e", 16, None),
    "TPU v5e": ("TPU v5e", 16, None),
    "v5p": ("TPU v5p", 95, None),
    "v5p-8": ("TPU v5p", 95, None),
    "v2-8": ("TPU v2", 16, None),
    "tpu-v3-32": ("TPU v3", 32, None),
    "v4-8": ("TPU v4", 32, None),
    "v6e-8": ("TPU v6e", 32, None),
    "tpu-v6e-slice": ("TPU v6e", 32, None),
    "Trillium": ("TPU v6e", 32, None),
    "TPU v4": ("TPU v4", 32, None),
    "tpu-v4-podslice": ("TPU v4", 32, None),
    "TPU v3": ("TPU v3", 32, None),
    "TPU v2": ("TPU v2", 16, None),
    # Groq: on-chip SRAM only, so the memory is never known in GB (a stated size is dropped)
    "Groq LPU": ("LPU", None, None),
    "GroqChip": ("LPU", None, None),
    "LPU v1": ("LPU", None, None),
    "GroqCloud LPU": ("LPU", None, None),
    "LPU 80GB": ("LPU", None, None),
}

UNKNOWN = [
    "",
    "   ",
    "GPU",
    "NVIDIA",
    "80GB",
    "8x",
    "CPU only",
    "Apple M2 Ultra",
    "GeForce GTX 980",
    "RTX 3050",
    "H10",
    "A1000",
    "A100X",  # a different product (converged accelerator), not an A100
    "MI300",  # MI300X or MI300A: the resolver does not guess
    "AMD Instinct MI250X/MI250",
    "A100 and H100",
    "RTX PRO 5000",
    "TPU v5",
    "gpu_v4",  # within a longer name a bare v4 is a version suffix, not TPU v4
    "Standard_ND40rs_v2",
]

VENDOR_PREFIXES = {
    "nvidia": ["NVIDIA ", "GeForce ", "Tesla ", "Quadro ", "NVIDIA GeForce "],
    "amd": ["AMD ", "Radeon ", "Instinct ", "AMD Instinct ", "AMD Radeon "],
    "intel": ["Intel ", "Habana ", "Intel Habana "],
    "google": ["Google ", "Cloud ", "Google Cloud "],
    "groq": ["Groq ", "GroqCloud ", "Groq Cloud "],
}
NAMES = sorted(CATALOG)
NAMES_WITH_MEMORY = [name for name in NAMES if CATALOG[name].memory_gb]


def essence(match: GpuMatch) -> tuple[object, ...]:
    return match.gpu_type, match.memory_gb, match.form_factor, match.vendor


# ------------------------------------------------------------------ resolver: examples


@pytest.mark.parametrize(("raw", "expected"), EXAMPLES.items())
def test_resolves_provider_names(raw: str, expected: tuple[str, int | None, str | None]) -> None:
    gpu_type, memory_gb, form_factor = expected
    assert resolve(raw).to_dict() == {
        "raw": raw,
        "gpu_type": gpu_type,
        "memory_gb": memory_gb,
        "form_factor": form_factor,
        "vendor": CATALOG[gpu_type].vendor,
        "nvlink": "nvlink" in raw.lower(),
    }


@pytest.mark.parametrize("raw", UNKNOWN)
def test_unknown_names_give_nothing_but_raw(raw: str) -> None:
    match = resolve(raw)
    assert match == GpuMatch(raw)
    assert match.to_dict() == {
        "raw": raw,
        "gpu_type": None,
        "memory_gb": None,
        "form_factor": None,
        "vendor": None,
        "nvlink": False,
    }
    assert match.spec is None


def test_the_three_rtx_6000_cards_are_distinct() -> None:
    cards = {name: resolve(name).spec for name in ("RTX 6000", "RTX 6000 Ada", "RTX PRO 6000")}
    assert {name: spec.name for name, spec in cards.items() if spec} == {
        "RTX 6000": "RTX 6000",
        "RTX 6000 Ada": "RTX 6000 Ada",
        "RTX PRO 6000": "RTX PRO 6000",
    }
    assert [spec.architecture for spec in cards.values() if spec] == [
        "Turing",
        "Ada Lovelace",
        "Blackwell",
    ]


@pytest.mark.parametrize(
    ("longer", "shorter"),
    [
        ("A10G", "A10"),
        ("A100", "A10"),
        ("L40S", "L40"),
        ("L40", "L4"),
        ("RTX 4080 SUPER", "RTX 4080"),
        ("RTX 4070 Ti SUPER", "RTX 4070 Ti"),
        ("MI250X", "MI250"),
        ("GH200", "H200"),
        ("V100S", "V100"),
        ("P4000", "P4"),
        ("Gaudi 2", "Gaudi"),
    ],
)
def test_the_most_specific_family_wins(longer: str, shorter: str) -> None:
    assert resolve(longer).gpu_type == longer
    assert resolve(shorter).gpu_type == shorter
    assert CATALOG[longer] != CATALOG[shorter]


def test_match_exposes_the_catalogue_entry() -> None:
    assert resolve("NVIDIA A100-SXM4-80GB").spec is CATALOG["A100"]
    assert set(resolve("anything").to_dict()) == {
        "raw",
        "gpu_type",
        "memory_gb",
        "form_factor",
        "vendor",
        "nvlink",
    }


def test_resolution_is_cached() -> None:
    assert resolve("H100 SXM5 80GB") is resolve("H100 SXM5 80GB")


# ------------------------------------------------------------------ resolver: properties


def case_changes(name: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(name, flips + [False] * len(name), strict=False))


def with_separators(text: str, separators: list[str]) -> str:
    parts = text.split(" ")
    return parts[0] + "".join(sep + part for sep, part in zip(separators + [" "] * len(parts), parts[1:], strict=False))


@given(st.sampled_from(NAMES))
def test_every_canonical_name_resolves_to_itself(name: str) -> None:
    spec = CATALOG[name]
    match = resolve(name)
    assert (match.gpu_type, match.vendor, match.memory_gb) == (
        name,
        spec.vendor,
        spec.default_memory_gb,
    )


@given(st.sampled_from(NAMES), st.lists(st.booleans(), max_size=30))
def test_case_does_not_matter(name: str, flips: list[bool]) -> None:
    assert essence(resolve(case_changes(name, flips))) == essence(resolve(name))


@given(st.sampled_from(NAMES), st.lists(st.sampled_from(["-", "_", " ", "", "  ", " - "]), max_size=6))
def test_separators_do_not_matter(name: str, separators: list[str]) -> None:
    assert essence(resolve(with_separators(name, separators))) == essence(resolve(name))


@given(st.data())
def test_vendor_prefixes_do_not_matter(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(NAMES))
    prefix = data.draw(st.sampled_from(VENDOR_PREFIXES[CATALOG[name].vendor]))
    assert essence(resolve(prefix + name)) == essence(resolve(name))


@given(st.sampled_from(NAMES), st.sampled_from(["1x ", "8x ", "4x", "x8 ", "2 x "]))
def test_count_prefixes_do_not_matter(name: str, count: str) -> None:
    assert essence(resolve(count + name)) == essence(resolve(name))


@given(st.data())
def test_all_variations_together(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(NAMES))
    text = (
        data.draw(st.sampled_from(["", "1x ", "8x "]))
        + data.draw(st.sampled_from(["", *VENDOR_PREFIXES[CATALOG[name].vendor]]))
        + name
    )
    text = with_separators(text, data.draw(st.lists(st.sampled_from(["-", "_", " ", ""]), max_size=8)))
    text = case_changes(text, data.draw(st.lists(st.booleans(), max_size=40)))
    assert essence(resolve(text)) == essence(resolve(name)), text


@given(st.data())
def test_stated_memory_of_a_known_size_is_kept(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(NAMES_WITH_MEMORY))
    size = data.draw(st.sampled_from(CATALOG[name].memory_gb))
    form = data.draw(
        st.sampled_from(["{n} {m}GB", "{n}-{m}G", "{n} {m} GB", "{n}_{m}gb", "{m}GB {n}", "{n} ({m} GiB)"])
    )
    match = resolve(form.format(n=name, m=size))
    assert (match.gpu_type, match.memory_gb) == (name, size)


@given(st.sampled_from(NAMES), st.integers(min_value=1, max_value=2000))
def test_a_stated_memory_is_kept_when_it_can_be_the_familys(name: str, size: int) -> None:
    """Usable memory below the datasheet's, and slices of a GPU, are kept; a size above the
    family's largest describes something else (a module's CPU memory, the whole instance)."""
    match = resolve(f"{name} {size}GB")
    assert match.gpu_type == name
    largest = max(CATALOG[name].memory_gb, default=0)
    assert match.memory_gb == (size if size <= largest * 1.1 else None)


@given(st.text())
def test_resolve_never_raises_on_arbitrary_text(raw: str) -> None:
    assert_consistent(resolve(raw))


WORDS = sorted({w for n in NAMES for w in n.split()} | {"NVIDIA", "80GB", "SXM4", "PCIe", "NVL", "8x", "S", "Ti", "G"})


@given(
    st.lists(st.sampled_from(WORDS), max_size=6),
    st.lists(st.sampled_from(["-", "_", " ", "", "/"]), max_size=6),
)
def test_resolve_is_consistent_on_catalogue_like_text(words: list[str], separators: list[str]) -> None:
    assert_consistent(resolve(with_separators(" ".join(words), separators)))


def assert_consistent(match: GpuMatch) -> None:
    spec = match.spec
    if spec is None:
        assert essence(match) == (None, None, None, None)
        return
    assert match.vendor == spec.vendor
    assert match.memory_gb is None or spec.plausible_memory(match.memory_gb)
    assert match.form_factor in (None, "SXM", "PCIE") or match.form_factor in spec.form_factors


# ------------------------------------------------------------------ catalogue invariants


def test_catalogue_covers_every_vendor_and_class() -> None:
    assert len(CATALOG) >= 100
    assert {spec.vendor for spec in CATALOG.values()} == {"nvidia", "amd", "intel", "google", "groq"}
    assert {spec.gpu_class for spec in CATALOG.values()} == {
        "datacenter",
        "workstation",
        "consumer",
        "accelerator",
    }


@pytest.mark.parametrize("spec", CATALOG.values(), ids=list(CATALOG))
def test_entry_is_well_formed(spec: GpuSpec) -> None:
    assert spec.vendor in VENDOR_PREFIXES
    assert spec.architecture.strip()
    assert list(spec.memory_gb) == sorted(set(spec.memory_gb)) and all(m > 0 for m in spec.memory_gb)
    assert spec.memory_gb or spec.gpu_class == "accelerator", "only an accelerator may have no size in GB"
    assert spec.default_memory_gb == (spec.memory_gb[0] if len(spec.memory_gb) == 1 else None)
    for variant in spec.variants:
        assert variant.memory_gb is None or variant.memory_gb in spec.memory_gb
        figures = [
            variant.figures.fp16_tflops,
            variant.figures.fp32_tflops,
            variant.figures.bandwidth_gbs,
        ]
        assert all(f is None or f > 0 for f in figures)
        assert variant.figures.bandwidth_gbs is not None, "every family publishes its memory bandwidth"
    for alias in spec.aliases:
        assert resolve(alias).gpu_type == spec.name, alias


def test_canonical_names_are_unique_ignoring_case() -> None:
    assert len({name.casefold() for name in CATALOG}) == len(CATALOG)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a100", "A100"), ("rtx 4090", "RTX 4090"), (" H100 ", "H100"), ("tpu V5E", "TPU v5e")],
)
def test_get_ignores_case(name: str, expected: str) -> None:
    assert get(name) is CATALOG[expected]


@pytest.mark.parametrize("name", ["rtx_4090", "NVIDIA A100", "nope", ""])
def test_get_only_knows_canonical_names(name: str) -> None:
    assert get(name) is None


def test_figures_differ_by_form_factor() -> None:
    h100 = CATALOG["H100"]
    assert h100.figures(form_factor="SXM") == Figures(989.5, 67, 3350)
    assert h100.figures(form_factor="PCIE") == Figures(756, 51, 2000)
    assert h100.figures(form_factor="NVL") == Figures(835.5, 60, 3900)
    assert h100.figures(memory_gb=94) == Figures(835.5, 60, 3900)
    assert h100.figures() == Figures(), "unknown form factor: no figure is certain"


def test_figures_differ_by_memory() -> None:
    a100 = CATALOG["A100"]
    assert a100.figures(memory_gb=40) == Figures(312, 19.5, 1555)
    assert a100.figures(80, "SXM").bandwidth_gbs == 2039
    assert a100.figures(80, "PCIE").bandwidth_gbs == 1935
    assert a100.figures(80) == Figures(312, 19.5, None)
    assert a100.figures(48) == Figures(312, 19.5, None), "an unknown size gives what every size shares"
    assert CATALOG["RTX 4090"].figures() == Figures(165.2, 82.6, 1008)


def test_memory_options_follow_form_factor() -> None:
    assert CATALOG["H100"].memory_options("NVL") == (94,)
    assert CATALOG["H100"].memory_options() == (80, 94)
    assert CATALOG["A100"].memory_options("SXM") == (40, 80)
    assert CATALOG["V100"].memory_options("PCIE") == (16, 32)
    assert CATALOG["H100"].form_factors == {"SXM", "PCIE", "NVL"}
    assert CATALOG["RTX 4090"].form_factors == frozenset()


# ------------------------------------------------------------------ catalogue validation

GOOD = """
["Q9"]
vendor = "nvidia"
architecture = "Test"
class = "datacenter"
memory_gb = [40, 80]
fp16_tflops = 100
variants = [{ form_factor = "SXM", memory_gb = 80, bandwidth_gbs = 2000 }]
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('vendor = "nvidia"', ""), "vendor must be one of"),
        (('vendor = "nvidia"', 'vendor = "nvida"'), "vendor must be one of"),
        (('class = "datacenter"', 'class = "server"'), "class must be one of"),
        (
            ('architecture = "Test"', 'architecture = " "'),
            "architecture must be a non-empty string",
        ),
        (("[40, 80]", "[80, 40]"), "ascending"),
        (("[40, 80]", "[40, 40]"), "ascending"),
        (("[40, 80]", "[]"), "non-empty list"),
        (("[40, 80]", "[40.5]"), "non-empty list"),
        (("fp16_tflops = 100", "fp16_tflops = -1"), "fp16_tflops must be a positive number"),
        (("fp16_tflops = 100", "fp16_tflops = true"), "fp16_tflops must be a positive number"),
        (("fp16_tflops = 100", 'fp16_tflops = "100"'), "fp16_tflops must be a positive number"),
        (("fp16_tflops = 100", "fp16 = 100"), "unknown key 'fp16'"),
        (("memory_gb = 80,", "memory_gb = 48,"), "not one of the family's memory_gb"),
        (('form_factor = "SXM"', 'form_factor = "OAM"'), "form_factor must be one of"),
        (('form_factor = "SXM", memory_gb = 80, ', ""), "needs memory_gb and/or form_factor"),
        (
            ("bandwidth_gbs = 2000 }]", "bandwidth_gbs = 0 }]"),
            "bandwidth_gbs must be a positive number",
        ),
        (("}]", '}, { form_factor = "SXM", memory_gb = 80 }]'), "same memory_gb and form_factor"),
        (("}]", ', aliases = "X"}]'), "aliases must be a list"),
        (('["Q9"]', '[" Q9"]'), "no surrounding spaces"),
    ],
)
def test_malformed_entries_are_named(change: tuple[str, str], message: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(CatalogError, match=message) as error:
        parse_catalog(text)
    assert "[" in str(error.value) and "Q9" in str(error.value)


def test_names_may_not_differ_only_in_case() -> None:
    with pytest.raises(CatalogError, match="apart from case"):
        parse_catalog(GOOD + GOOD.replace('["Q9"]', '["q9"]'))


def test_invalid_toml_is_reported() -> None:
    with pytest.raises(CatalogError, match="not valid TOML"):
        parse_catalog("[unclosed")


def test_a_valid_catalogue_parses() -> None:
    spec = parse_catalog(GOOD)["Q9"]
    assert spec.memory_gb == (40, 80) and spec.form_factors == {"SXM"}
    assert spec.figures(80, "SXM") == Figures(100, None, 2000)


SRAM_ONLY = """
["Q9"]
vendor = "groq"
architecture = "Test"
class = "accelerator"
memory_gb = []
fp16_tflops = 100
bandwidth_gbs = 80000
"""


def test_an_accelerator_without_whole_gb_memory_may_list_none() -> None:
    spec = parse_catalog(SRAM_ONLY)["Q9"]
    assert spec.memory_gb == () and spec.default_memory_gb is None
    assert spec.memory_options() == ()
    assert spec.figures() == Figures(100, None, 80000)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('class = "accelerator"', 'class = "datacenter"'), "only class 'accelerator' may give"),
        (("bandwidth_gbs = 80000", "variants = [{ memory_gb = 1 }]"), "not one of the family's memory_gb"),
    ],
)
def test_only_an_accelerator_may_list_no_memory(change: tuple[str, str], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        parse_catalog(SRAM_ONLY.replace(*change))


def test_the_groq_lpu_resolves_with_unknown_memory() -> None:
    lpu = CATALOG["LPU"]
    assert (lpu.vendor, lpu.architecture, lpu.gpu_class, lpu.memory_gb) == ("groq", "GroqChip", "accelerator", ())
    assert lpu.figures() == Figures(188, None, 80000)
    assert resolve("Groq LPU").to_dict() == {
        "raw": "Groq LPU",
        "gpu_type": "LPU",
        "memory_gb": None,
        "form_factor": None,
        "vendor": "groq",
        "nvlink": False,
    }


def test_names_that_read_the_same_in_two_families_are_rejected() -> None:
    clash = GOOD + GOOD.replace('["Q9"]', '["Q 8"]').replace("variants", 'aliases = ["q-9"]\nvariants')
    with pytest.raises(CatalogError, match="reads the same"):
        _Matcher(parse_catalog(clash))


def test_an_alias_that_is_only_vendor_words_is_rejected() -> None:
    with pytest.raises(CatalogError, match="no name left"):
        _Matcher(parse_catalog(GOOD.replace("variants", 'aliases = ["NVIDIA 80GB"]\nvariants')))


# ------------------------------------------------------------------ unknown names


def test_unknown_names_are_reported_once_and_counted() -> None:
    unknown = UnknownGpuNames()
    assert unknown.record(resolve("Mystery GPU 9000"))
    assert not unknown.record(resolve("Mystery GPU 9000"))
    assert unknown.record(resolve("Other"))
    assert not unknown.record(resolve("A100"))
    assert unknown.snapshot() == {"Mystery GPU 9000": 2, "Other": 1}
    assert len(unknown) == 2


def test_unknown_names_are_bounded() -> None:
    unknown = UnknownGpuNames(limit=2)
    assert [unknown.record(GpuMatch(name)) for name in ("a", "b", "c", "a")] == [
        True,
        True,
        False,
        False,
    ]
    assert unknown.snapshot() == {"a": 2, "b": 1}
    assert unknown.dropped == 1


def test_unknown_names_are_thread_safe() -> None:
    unknown = UnknownGpuNames()
    firsts: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        seen = [unknown.record(GpuMatch(f"name {i % 10}")) for i in range(1000)]
        with lock:
            firsts.extend(seen)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(firsts) == 10
    assert sum(unknown.snapshot().values()) == 8000
