"""`catalogvlm render-repo` and `catalogvlm build-cache`: artifacts, built without serving anything."""

from __future__ import annotations

import argparse
from pathlib import Path

from catalogvlm.pipeline.cpu.embeddings import CategoryEmbeddingCache
from catalogvlm.taxonomy import load_taxonomy

from catalogvlm.settings import EMBEDDINGS_DIR, taxonomy_dir

from .repository import PROFILES, parse_assignments, render_repository


def register(subcommands: argparse._SubParsersAction) -> None:
    render = subcommands.add_parser("render-repo", help="render a deployable Triton model repository")
    render.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--taxonomy", metavar="DIR")
    render.add_argument("--set", dest="values", action="append", default=[], metavar="KEY=VALUE")
    render.set_defaults(handler=_render)
    cache = subcommands.add_parser("build-cache", help="embed the taxonomy's categories once (CPU profile)")
    cache.add_argument("--taxonomy", metavar="DIR")
    cache.add_argument("--out", type=Path, default=EMBEDDINGS_DIR)
    cache.set_defaults(handler=_build_cache)


def _render(args: argparse.Namespace) -> int:
    values = {"taxonomy_dir": str(taxonomy_dir(args.taxonomy)), "embeddings_dir": str(EMBEDDINGS_DIR)}
    rendered = render_repository(args.profile, args.out, {**values, **parse_assignments(args.values)})
    print(f"rendered profile {rendered.profile} into {rendered.path}: {', '.join(rendered.models)}")
    return 0


def _build_cache(args: argparse.Namespace) -> int:
    root = taxonomy_dir(args.taxonomy)
    print(CategoryEmbeddingCache(root, args.out).build(load_taxonomy(root)))
    return 0
