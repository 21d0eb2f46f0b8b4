"""The ``gpubroker`` command's entry point: one parser, each command declared by its own module.

Usage errors are argparse's (exit 2); a product error prints one line naming the problem and exits
2; the commands over the API print one line for a refused or failed request and exit 1 (3 when the
gateway cannot be reached).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from gpubroker.cli import gpus, history, offers, operate, providers, watch
from gpubroker.core.errors import GpubrokerError


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except argparse.ArgumentTypeError as exc:  # a command's own check of its arguments
        print(f"gpubroker: error: {exc}", file=sys.stderr)
        return 2
    except GpubrokerError as exc:
        print(f"gpubroker: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


class Parser(argparse.ArgumentParser):
    """A usage error is one line naming the problem (and where help is), not the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="gpubroker", description="GPU offers from every cloud, in one API.")
    commands = parser.add_subparsers(metavar="COMMAND")
    offers.add_commands(commands)
    watch.add_commands(commands)
    history.add_commands(commands)
    providers.add_commands(commands)
    catalogue = commands.add_parser("gpus", help="the GPU catalogue (and tools for GPU names: resolve, score)")
    gpus.add_options(catalogue)
    operate.add_commands(commands, catalogue.add_subparsers(metavar="ACTION"))
    return parser
