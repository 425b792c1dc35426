"""The token budget of one product on the GPU profile, measured with the checkpoint's tokenizer, and the engine
limits and memory that follow from it. Nothing here is a magic number: every limit is a sum of measured parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from catalogvlm.pipeline.candidates import DEFAULT_TOP_K, Candidate
from catalogvlm.pipeline.contract import Product
from catalogvlm.pipeline.prompts import attribute_prompt, candidates_block, category_prompt
from catalogvlm.pipeline.qwen2vl import Qwen2VLCheckpoint, Qwen2VLImageSettings, Qwen2VLPromptEncoder
from catalogvlm.taxonomy import Taxonomy

# Menus are compared by prompt length in characters first; the longest few are then tokenized. Token counts
# follow character counts closely for this JSON, and tokenizing all ~10,600 menus would take a minute.
MENUS_TOKENIZED = 100
GIB = 1024**3


@dataclass(frozen=True)
class BudgetSettings:
    max_batch_size: int = 8
    max_pixels: int = 28 * 28 * 512  # product photos: 512 visual tokens keep text legible at ~630×630
    max_product_tokens: int = 1024  # title + description + type/vendor/tags; longer products are refused
    max_output_tokens: int = 512  # the attribute stage's answer (the category stage asks for 256)
    candidates_top_k: int = DEFAULT_TOP_K  # retrieval's candidates in the category prompt


@dataclass(frozen=True)
class TokenBudget:
    settings: BudgetSettings
    visual_tokens_per_image: int
    patches_per_image: int
    category_prompt_tokens: int
    attribute_prompt_tokens: int  # the longest attribute menu of the taxonomy
    longest_menu_category: str

    @property
    def instruction_tokens(self) -> int:
        """The larger stage's prompt with a one-token product and one image pad."""
        return max(self.category_prompt_tokens, self.attribute_prompt_tokens)

    @property
    def max_input_len(self) -> int:
        return self.instruction_tokens + self.visual_tokens_per_image - 1 + self.settings.max_product_tokens

    @property
    def max_seq_len(self) -> int:
        return self.max_input_len + self.settings.max_output_tokens

    @property
    def max_multimodal_len(self) -> int:
        return self.settings.max_batch_size * self.visual_tokens_per_image

    @property
    def max_num_tokens(self) -> int:
        """One full context plus one generated token for each other sequence in flight, per engine step."""
        return self.max_input_len + self.settings.max_batch_size - 1


def measure_budget(
    encoder: Qwen2VLPromptEncoder, taxonomy: Taxonomy, image: Qwen2VLImageSettings, settings: BudgetSettings
) -> TokenBudget:
    product = Product(title="x", image=b"\0")  # one product token; the image block with its single pad
    by_length = sorted(taxonomy, key=lambda c: len(attribute_prompt(product, c.full_name, c.attributes)))
    longest = max(
        by_length[-MENUS_TOKENIZED:],
        key=lambda c: encoder.count_tokens(attribute_prompt(product, c.full_name, c.attributes)),
    )
    return TokenBudget(
        settings=settings,
        # smart_resize keeps both sides multiples of factor and the area within max_pixels: this bound is tight
        visual_tokens_per_image=settings.max_pixels // image.factor**2,
        patches_per_image=settings.max_pixels // image.patch_size**2,
        category_prompt_tokens=encoder.count_tokens(
            category_prompt(product, longest_candidates(taxonomy, settings.candidates_top_k))
        ),
        attribute_prompt_tokens=encoder.count_tokens(attribute_prompt(product, longest.full_name, longest.attributes)),
        longest_menu_category=longest.full_name,
    )


def longest_candidates(taxonomy: Taxonomy, top_k: int) -> list[Candidate]:
    """The K longest category paths as candidates: the costliest candidates block a prompt can carry."""
    longest = sorted(taxonomy, key=lambda c: len(c.full_name))[-top_k:] if top_k > 0 else []
    return [Candidate(c.full_name, 0.99) for c in longest]


def candidates_block_tokens(encoder: Qwen2VLPromptEncoder, candidates: Sequence[Candidate]) -> int:
    """What a candidates block adds to the category prompt, in tokens (with the blank line before it)."""
    return encoder.count_tokens("\n\n" + candidates_block(candidates)) if candidates else 0


@dataclass(frozen=True)
class MemoryEstimate:
    language_weights_bytes: int
    vision_weights_bytes: int
    kv_bytes_per_token: int
    gpu_bytes: int
    kv_cache_free_gpu_mem_fraction: float

    @property
    def kv_cache_bytes(self) -> int:
        free = self.gpu_bytes - self.language_weights_bytes - self.vision_weights_bytes
        return int(free * self.kv_cache_free_gpu_mem_fraction)

    @property
    def kv_cache_tokens(self) -> int:
        return self.kv_cache_bytes // self.kv_bytes_per_token


def estimate_memory(
    checkpoint: Qwen2VLCheckpoint, gpu_gib: float = 80, kv_cache_free_gpu_mem_fraction: float = 0.9
) -> MemoryEstimate:
    """FP8 linear layers (1 byte), FP16 embeddings/lm_head/norms/biases, an FP16 vision tower, an FP8 KV cache.

    Runtime activations and CUDA context are not counted: TensorRT-LLM reserves them before it sizes the KV
    cache from the free memory, so the real token capacity is somewhat lower.
    """
    c, v = checkpoint, checkpoint.vision
    kv_dim = c.num_key_value_heads * c.head_dim
    attention = 2 * c.hidden_size * c.hidden_size + 2 * c.hidden_size * kv_dim  # q, o; k, v
    layer_linear = attention + 3 * c.hidden_size * c.intermediate_size  # gate, up, down
    layer_fp16 = 2 * c.hidden_size + c.hidden_size + 2 * kv_dim  # two norms, q/k/v biases
    embeddings = c.vocab_size * c.hidden_size * (1 if c.tie_word_embeddings else 2)
    language = c.num_hidden_layers * (layer_linear + 2 * layer_fp16) + 2 * (embeddings + c.hidden_size)
    vit_mlp = int(v.embed_dim * v.mlp_ratio)
    vit_block = 4 * v.embed_dim * v.embed_dim + 2 * v.embed_dim * vit_mlp
    merged = v.embed_dim * v.spatial_merge_size**2
    patch_embed = 3 * v.temporal_patch_size * v.patch_size**2 * v.embed_dim
    vision = 2 * (v.depth * vit_block + patch_embed + merged * merged + merged * c.hidden_size)
    return MemoryEstimate(
        language_weights_bytes=language,
        vision_weights_bytes=vision,
        kv_bytes_per_token=2 * c.num_hidden_layers * kv_dim,  # K and V, one byte each in FP8
        gpu_bytes=int(gpu_gib * GIB),
        kv_cache_free_gpu_mem_fraction=kv_cache_free_gpu_mem_fraction,
    )
