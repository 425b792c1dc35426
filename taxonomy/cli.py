"""`catalogvlm taxonomy correct|show`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable

from catalogvlm.settings import taxonomy_dir

from .correction import CategoryCorrector
from .index import Taxonomy, load_taxonomy
from .model import Category, TaxonomyInputError


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("taxonomy", help="look up and correct Shopify taxonomy categories")
    parser.add_argument("--taxonomy", metavar="DIR", help="taxonomy release folder (default: $CATALOGVLM_TAXONOMY)")
    actions = parser.add_subparsers(dest="taxonomy_command", required=True)
    correct = actions.add_parser("correct", help="map category paths or ids to the nearest valid category")
    correct.add_argument("paths", nargs="*", help="paths to correct; one per line on stdin when none")
    correct.set_defaults(handler=_correct)
    show = actions.add_parser("show", help="a category with its ancestors and attribute menu, as JSON")
    show.add_argument("category", metavar="ID_OR_PATH")
    show.set_defaults(handler=_show)


def _correct(args: argparse.Namespace) -> int:
    corrector = CategoryCorrector(load_taxonomy(taxonomy_dir(args.taxonomy)))
    # stdin is read as bytes so that a line which is not UTF-8 gets its own error instead of aborting the run.
    queries: Iterable[str | bytes] = args.paths or sys.stdin.buffer.read().splitlines()
    failures = 0
    for query in queries:
        shown = query if isinstance(query, str) else query.decode("utf-8", "replace")
        try:
            answer = {"input": shown, **corrector.correct(query).to_dict()}
        except TaxonomyInputError as error:
            failures += 1
            answer = {"input": shown, "error": str(error)}
        print(json.dumps(answer, ensure_ascii=False), flush=True)
    return 1 if failures else 0


def _show(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(taxonomy_dir(args.taxonomy))
    category = taxonomy.get(args.category.strip()) or taxonomy.by_full_name(args.category.strip())
    if category is None:
        category = taxonomy.category(CategoryCorrector(taxonomy).correct(args.category).id)
    print(json.dumps(describe(taxonomy, category), ensure_ascii=False, indent=2))
    return 0


def describe(taxonomy: Taxonomy, category: Category) -> dict[str, object]:
    google = taxonomy.google_category(category)
    return {
        "id": category.id,
        "name": category.name,
        "full_name": category.full_name,
        "level": category.level,
        "is_leaf": category.is_leaf,
        "ancestors": [{"id": a.id, "name": a.name} for a in taxonomy.ancestors(category)],
        "children": [{"id": c.id, "name": c.name} for c in taxonomy.children(category)],
        "google": {"id": google.id, "full_name": google.full_name} if google else None,
        "attributes": [
            {
                "id": a.id,
                "handle": a.handle,
                "name": a.name,
                "extended": a.extended,
                "values": [{"id": v.id, "name": v.name} for v in a.values],
            }
            for a in category.attributes
        ],
    }
