"""Vultr region ids (the ``locations`` of a plan) and the country each is in.

The ids and countries are the ones ``GET /v2/regions`` lists; the table saves a second call per
poll for a list that changes perhaps once a year. An id missing here gets no country, never a
guess.
"""

from __future__ import annotations

COUNTRIES = {
    "ams": "NL", "atl": "US", "blr": "IN", "bom": "IN", "cdg": "FR", "del": "IN", "dfw": "US",
    "ewr": "US", "fra": "DE", "hnl": "US", "icn": "KR", "itm": "JP", "jnb": "ZA", "lax": "US",
    "lhr": "GB", "mad": "ES", "man": "GB", "mel": "AU", "mex": "MX", "mia": "US", "nrt": "JP",
    "ord": "US", "sao": "BR", "scl": "CL", "sea": "US", "sgp": "SG", "sjc": "US", "sto": "SE",
    "syd": "AU", "tlv": "IL", "waw": "PL", "yto": "CA",
}  # fmt: skip
