"""The `catalogvlm` command: one subcommand per job, each registered by the subpackage that owns it."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from catalogvlm import __version__
from catalogvlm.bench import suite as bench_suite
from catalogvlm.builders import cli as builders_cli
from catalogvlm.client import cli as client_cli
from catalogvlm.errors import CatalogvlmError
from catalogvlm.evaluation import cli as evaluation_cli
from catalogvlm.loadtest import capacity, soak
from catalogvlm.loadtest import cli as loadtest_cli
from catalogvlm.pipelines import cli as pipelines_cli
from catalogvlm.servers import cli as servers_cli
from catalogvlm.taxonomy import cli as taxonomy_cli

from . import demo

_REGISTRARS = (
    demo.register,
    servers_cli.register,
    client_cli.register,
    evaluation_cli.register,
    pipelines_cli.register,
    builders_cli.register,
    loadtest_cli.register,
    soak.register,
    capacity.register,
    bench_suite.register,
    taxonomy_cli.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catalogvlm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"catalogvlm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subcommands = parser.add_subparsers(dest="command", required=True)
    for register in _REGISTRARS:
        register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "accepts_beam_options", False):
        args.beam_options = unknown  # `catalogvlm batch`: Beam's own pipeline options, passed on
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.handler(args)
    except CatalogvlmError as error:  # one line a user can act on, never a traceback
        print(f"catalogvlm: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
