"""The `catalogvlm` command: one subcommand per job, each registered by the subpackage that owns it."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from catalogvlm import __version__, demo, serve
from catalogvlm.bench import suite as bench_suite
from catalogvlm.builders import cli as builders_cli
from catalogvlm.builders.repository import RenderError
from catalogvlm.builders.validation import RepositoryInvalid
from catalogvlm.client import cli as client_cli
from catalogvlm.client.evaluation import cli as evaluation_cli
from catalogvlm.loadtest import capacity, soak
from catalogvlm.loadtest import cli as loadtest_cli
from catalogvlm.pipeline.qwen2vl import CheckpointError
from catalogvlm.settings import SettingsError
from catalogvlm.taxonomy import TaxonomyError
from catalogvlm.taxonomy import cli as taxonomy_cli

_REGISTRARS = (
    demo.register,
    serve.register,
    client_cli.register,
    evaluation_cli.register,
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
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.handler(args)
    except (SettingsError, TaxonomyError, CheckpointError, RenderError, RepositoryInvalid) as error:
        print(f"catalogvlm: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
