"""Reading an AWS Price List regional offer file in its CSV form, without loading all of it.

A regional EC2 offer file holds every EC2 price of a region (instances, every OS and tenancy,
reserved terms, EBS, data transfer...), so a big region's file is large. The CSV form puts one
price per line with all product attributes on it, which lets us skip lines with a cheap byte
search and parse only candidate lines, instead of building the whole JSON document in memory.

Layout: five preamble lines (``"FormatVersion","v1.0"``, ``"Disclaimer",...``,
``"Publication Date",...``, ``"Version",...``, ``"OfferCode","AmazonEC2"``), a header line,
then one quoted row per price term.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from gpubroker_aws.families import INSTANCE_TYPE

PREAMBLE_LINES = 5
BOM = b"\xef\xbb\xbf"

# Columns the adapter reads; a header without one of the required ones is not an EC2 offer file.
REQUIRED = (
    "SKU", "TermType", "Unit", "PricePerUnit", "Currency", "Instance Type", "vCPU", "Memory", "Tenancy",
    "Operating System", "License Model", "Pre Installed S/W", "CapacityStatus", "GPU", "Region Code",
)  # fmt: skip
OPTIONAL = ("RateCode", "EffectiveDate", "Storage", "Physical Processor", "MarketOption", "operation", "Location")

# What "on-demand Linux, shared tenancy, no bundled software, a running instance" is in the file.
WANTED = {
    "TermType": {"OnDemand"},
    "Unit": {"Hrs"},
    "Tenancy": {"Shared"},
    "Operating System": {"Linux"},
    "License Model": {"No License required"},
    "Pre Installed S/W": {"NA", ""},
    "CapacityStatus": {"Used"},
    "MarketOption": {"OnDemand", ""},
    "operation": {"RunInstances", ""},
}


def gpu_rows(body: bytes) -> Iterator[dict[str, str]]:
    """The on-demand Linux shared-tenancy rows of the listed GPU families, as column -> value."""
    stream = io.BytesIO(body)
    preamble = [stream.readline() for _ in range(PREAMBLE_LINES)]
    if not preamble[0].removeprefix(BOM).startswith(b'"FormatVersion"'):
        raise ValueError("not an AWS Price List CSV offer file (no FormatVersion preamble)")
    header = next(csv.reader([stream.readline().decode("utf-8")]))
    columns = {name: i for i, name in enumerate(header)}
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise ValueError(f"offer file header lacks {', '.join(missing)}")
    wanted = {name: columns[name] for name in (*REQUIRED, *OPTIONAL) if name in columns}
    for line in stream:
        if b'"OnDemand"' not in line or b'"Shared"' not in line or not INSTANCE_TYPE.search(line):
            continue  # the byte pre-filter: most lines of a regional file end here
        row = next(csv.reader([line.decode("utf-8")]))
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} fields, the header {len(header)}")
        record = {name: row[i] for name, i in wanted.items()}
        if all(record.get(name, "") in allowed for name, allowed in WANTED.items()):
            yield record
