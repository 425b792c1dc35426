"""The benchmark corpora shipped with the package: realistic category-path mistakes of vision-language models
(taxonomy correction) and Qwen2-VL checkpoint configs (prompt ids and preprocessing need no weights)."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")
CORRECTION_CASES = DATA_DIR / "hallucinated_paths.jsonl"
QWEN2VL_7B_CONFIG = DATA_DIR / "qwen2_vl_7b"
QWEN2VL_2B_CONFIG = DATA_DIR / "qwen2_vl_2b"
