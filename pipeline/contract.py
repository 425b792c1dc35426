"""The `vlm` tensor contract the BLS relies on, in one place: the BLS builds its calls from it and the static
repository validation (builders/validation.py) checks every profile's `vlm` against it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # Triton's TYPE_* name
    dims: tuple[int, ...]  # without the batch dimension: `vlm` batches in every profile
    optional: bool = False


VLM_INPUTS = (
    TensorSpec("text_input", "TYPE_STRING", (1,)),
    TensorSpec("image_bytes", "TYPE_UINT8", (-1,), optional=True),
    TensorSpec("max_tokens", "TYPE_INT32", (1,), optional=True),
)
VLM_OUTPUTS = (TensorSpec("text_output", "TYPE_STRING", (1,)),)
TEXT_INPUT, IMAGE_INPUT, MAX_TOKENS_INPUT = (spec.name for spec in VLM_INPUTS)
(TEXT_OUTPUT,) = (spec.name for spec in VLM_OUTPUTS)
