"""Country names as TensorDock writes them (``location.country``) to ISO-3166 alpha-2 codes.

The v2 API spells the country out ("United States"); the Offer schema wants the two-letter code.
Only names a TensorDock host can plausibly list are here; an unknown name gives ``None`` rather
than a guess, and a value that already is a two-letter code is passed through.
"""

from __future__ import annotations

_CODES = {
    "argentina": "AR", "australia": "AU", "austria": "AT", "belgium": "BE", "brazil": "BR",
    "bulgaria": "BG", "canada": "CA", "chile": "CL", "china": "CN", "croatia": "HR",
    "czech republic": "CZ", "czechia": "CZ", "denmark": "DK", "estonia": "EE", "finland": "FI",
    "france": "FR", "germany": "DE", "greece": "GR", "hong kong": "HK", "hungary": "HU",
    "iceland": "IS", "india": "IN", "indonesia": "ID", "ireland": "IE", "israel": "IL",
    "italy": "IT", "japan": "JP", "kazakhstan": "KZ", "latvia": "LV", "lithuania": "LT",
    "luxembourg": "LU", "malaysia": "MY", "mexico": "MX", "netherlands": "NL",
    "the netherlands": "NL", "new zealand": "NZ", "norway": "NO", "philippines": "PH",
    "poland": "PL", "portugal": "PT", "romania": "RO", "serbia": "RS", "singapore": "SG",
    "slovakia": "SK", "slovenia": "SI", "south africa": "ZA", "south korea": "KR",
    "korea": "KR", "spain": "ES", "sweden": "SE", "switzerland": "CH", "taiwan": "TW",
    "thailand": "TH", "turkey": "TR", "türkiye": "TR", "ukraine": "UA",
    "united arab emirates": "AE", "united kingdom": "GB", "uk": "GB", "great britain": "GB",
    "united states": "US", "united states of america": "US", "usa": "US", "vietnam": "VN",
}  # fmt: skip


def country_code(name: object) -> str | None:
    """``"United States"`` -> ``"US"``; ``"DE"`` -> ``"DE"``; anything unknown -> ``None``."""
    if not isinstance(name, str) or not name.strip():
        return None
    text = name.strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return _CODES.get(" ".join(text.lower().split()))
