"""How Vultr describes the GPUs in a plan, and the memory of one whole card.

Cloud GPU plans (``vcg``) give ``gpu_type`` (``NVIDIA_A100``) and ``gpu_vram_gb``, the GPU memory
of the whole plan: a fraction of one card (``vcg-a100-1c-6g-4vram``), one card or several. The
number of cards is that memory over one card's; Vultr sells one memory size of each card, listed
here from its GPU pages. Bare-metal plans carry no GPU fields; their id names the count and card
(``vbm-112c-2048gb-8-h100-gpu``; no count means one, as in ``vbm-72c-480gb-gh200-gpu``). One
token is not the card's name: ``l40`` in ``vbm-64c-2048gb-8-l40-gpu`` is Vultr's 8 x L40S
server (``METAL_CARDS``).
"""

from __future__ import annotations

import re

CARD_MEMORY_GB = {
    "A16": 16, "A40": 48, "A100": 80, "L40S": 48, "H100": 80, "H200": 141, "GH200": 96,
    "B200": 180, "MI300X": 192, "MI325X": 256, "MI355X": 288,
}  # fmt: skip
METAL_CARDS = {"l40": "L40S"}
"""Bare-metal id tokens that are not the card's name, from Vultr's bare-metal GPU pages."""
ARM_CARDS = frozenset({"GH200", "GB200"})
"""Grace Hopper/Blackwell superchips: the host CPU is an Arm Neoverse (Grace)."""

_METAL_ID = re.compile(r"^vbm-\d+c-\d+gb-(?:(\d+)-)?([a-z0-9]+)-gpu$")
_VENDOR_PREFIX = re.compile(r"^(?:NVIDIA|AMD)[_ ]", re.IGNORECASE)


def card(gpu_type: str) -> str:
    """``NVIDIA_A100`` -> ``A100``: the card without the vendor prefix, upper case."""
    return _VENDOR_PREFIX.sub("", gpu_type.strip()).upper()


def cloud_gpu(gpu_type: str, vram_gb: float) -> tuple[int, float]:
    """(cards, memory of one card as rented) for a Cloud GPU plan.

    A plan with less memory than one card is a fraction of one card: one GPU with that memory.
    A card missing from the table is counted as one GPU holding all the plan's memory.
    """
    per_card = CARD_MEMORY_GB.get(card(gpu_type))
    if per_card is None or vram_gb < per_card:
        return 1, float(vram_gb)
    return max(1, round(vram_gb / per_card)), float(per_card)


def metal_gpu(plan_id: str) -> tuple[str, int] | None:
    """(card, count) for a bare-metal GPU plan id, ``None`` for a CPU plan. The card is the id's
    token as written, or the real card where the token is not its name (``METAL_CARDS``)."""
    match = _METAL_ID.match(plan_id)
    if match is None:
        return None
    token = match.group(2)
    return METAL_CARDS.get(token, token), int(match.group(1) or 1)
