"""Shared fixtures: the real taxonomy release (../shared/taxonomy or $CATALOGVLM_TAXONOMY), loaded once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from catalogvlm.taxonomy import CategoryCorrector, Taxonomy, load_taxonomy

from catalogvlm.settings import taxonomy_dir

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def taxonomy_path() -> Path:
    return taxonomy_dir()


@pytest.fixture(scope="session")
def taxonomy(taxonomy_path: Path) -> Taxonomy:
    return load_taxonomy(taxonomy_path)


@pytest.fixture(scope="session")
def corrector(taxonomy: Taxonomy) -> CategoryCorrector:
    return CategoryCorrector(taxonomy)


@pytest.fixture(scope="session")
def mini_taxonomy() -> Taxonomy:
    return load_taxonomy(DATA / "mini_taxonomy")


@pytest.fixture(scope="session")
def hallucinated_paths() -> list[dict[str, str]]:
    lines = (DATA / "hallucinated_paths.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]
