"""Where the project finds its data, decided once and in one place."""

from __future__ import annotations

import os
from pathlib import Path

from catalogvlm.errors import ConfigurationError

TAXONOMY_ENV = "CATALOGVLM_TAXONOMY"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Rendered repositories, the server's runnable copy, embedding caches: rebuildable, never committed.
CACHE_ROOT = Path(os.environ.get("CATALOGVLM_CACHE", Path.home() / ".cache" / "catalogvlm"))
EMBEDDINGS_DIR = CACHE_ROOT / "embeddings"


class SettingsError(ConfigurationError):
    """A required location is missing; the message says how to provide it."""


def taxonomy_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--taxonomy DIR`, else $CATALOGVLM_TAXONOMY, else a `shared/taxonomy` beside the checkout."""
    candidates = [explicit, os.environ.get(TAXONOMY_ENV)] if explicit or os.environ.get(TAXONOMY_ENV) else []
    if not candidates:
        candidates = [PROJECT_ROOT.parent / "shared" / "taxonomy", Path.cwd().parent / "shared" / "taxonomy"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "categories.json").is_file():
            return Path(candidate).resolve()
    tried = ", ".join(str(c) for c in candidates if c)
    raise SettingsError(
        f"no Shopify taxonomy release found (tried {tried}). Pass --taxonomy DIR or set {TAXONOMY_ENV} "
        "to a folder holding categories.json and attributes.json (an official release's dist/en/)."
    )
