"""`catalogvlm demo`: what the project does, on this machine, in one command."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from catalogvlm.settings import taxonomy_dir
from catalogvlm.taxonomy import CategoryCorrector, load_taxonomy

MODEL_MISTAKES = (
    "Apparel & Accessories > Watches > Smartwatch",
    "Electronics > Cell Phones > Smartphones",
    "Home and Garden > Linens and Bedding > Towels",
    "Apparel & Accessories > T-Shirts",
    "Sporting Goods > Camping > Sleeping Bags",
    "gid://shopify/TaxonomyCategry/aa-6-12",
)


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("demo", help="show the taxonomy correction on typical model mistakes")
    parser.add_argument("--taxonomy", metavar="DIR")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    corrector = CategoryCorrector(load_taxonomy(taxonomy_dir(args.taxonomy)))
    table = Table(title="Category paths a model wrote, corrected to the Shopify taxonomy")
    for column in ("model wrote", "taxonomy category", "score"):
        table.add_column(column)
    for mistake in MODEL_MISTAKES:
        answer = corrector.correct(mistake)
        table.add_row(mistake, answer.full_name, f"{answer.score:.1f}")
    Console().print(table)
    return 0
