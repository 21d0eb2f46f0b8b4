"""Write the API's documents, as the gateway serves them, into a folder:
``python -m gpubroker.gateway.documents docs/openapi`` (``scripts/api-documents`` does it).

The committed copies in ``docs/openapi/`` are what a reviewer reads in a change's diff and what
tools without a running gateway use; a test fails when they differ from what the code generates.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import orjson


def write(folder: Path) -> list[Path]:
    """``openapi.json`` and ``asyncapi.json`` in ``folder``, indented for reading and diffs."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker.gateway.settings")
    import django

    django.setup()
    from gpubroker.gateway.docs import asyncapi_document, openapi_document

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in (("openapi.json", openapi_document()), ("asyncapi.json", asyncapi_document())):
        path = folder / name
        path.write_bytes(orjson.dumps(orjson.loads(content), option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m gpubroker.gateway.documents FOLDER", file=sys.stderr)
        return 2
    for path in write(Path(argv[0])):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
