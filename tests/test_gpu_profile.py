"""The GPU profiles without a GPU: static validation of every profile; the gpu profile's `vlm` (NVIDIA's LLM-API
model) against the reference extract of NVIDIA's files; the legacy gpu-engine profile's tensorrt_llm config and
its `vlm` ensemble served by a real tritonserver with its two GPU-only steps stood in; the measured token budget.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import images
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb
from tritonclient.utils import InferenceServerException

from catalogvlm.bench.corpora import QWEN2VL_7B_CONFIG
from catalogvlm.builders import nvidia_reference as nvidia_reference_script
from catalogvlm.builders.budget import BudgetSettings, estimate_memory, measure_budget
from catalogvlm.builders.llmapi import LLMAPI_MODEL_DIR, LLMAPI_MODEL_SUBDIR, nvidia_reference
from catalogvlm.builders.repository import (
    GPU_DEFAULT_MAX_INPUT_LEN,
    GPU_DEFAULT_MAX_PIXELS,
    GPU_DEFAULT_MAX_SEQ_LEN,
    render_repository,
)
from catalogvlm.builders.validation import RepositoryInvalid, validate_repository
from catalogvlm.pipeline.contract import Product
from catalogvlm.pipeline.prompts import category_prompt
from catalogvlm.pipeline.qwen2vl import Qwen2VLCheckpoint, Qwen2VLImageSettings, Qwen2VLPromptEncoder
from catalogvlm.pipeline.qwen2vl.tokens import load_tokenizer

DATA = Path(__file__).parent / "data"
CHECKPOINT = QWEN2VL_7B_CONFIG
STANDINS = Path(__file__).parent / "models" / "gpu_standins"


def render(profile: str, out: Path, taxonomy_path: Path, **values: str) -> Path:
    base = {"taxonomy_dir": str(taxonomy_path)}
    if profile == "cpu":
        base["embeddings_dir"] = str(out / "embeddings")
    render_repository(profile, out, {**base, **values})
    return out


def config_of(repository: Path, model: str) -> pb.ModelConfig:
    return text_format.Parse((repository / model / "config.pbtxt").read_text(), pb.ModelConfig())


def write_config(repository: Path, config: pb.ModelConfig) -> None:
    (repository / config.name / "config.pbtxt").write_text(text_format.MessageToString(config))


@pytest.mark.parametrize(
    ("profile", "vlm", "batch"), [("cpu", "vlm", 16), ("gpu", "tensorrt_llm", 0), ("gpu-engine", "vlm", 8)]
)
def test_every_profile_passes_static_validation(tmp_path, taxonomy_path, profile, vlm, batch):
    configs = validate_repository(render(profile, tmp_path, taxonomy_path))
    assert {"product_understanding", "taxonomy_validate", "category_candidates", vlm} <= set(configs)
    assert configs["product_understanding"].parameters["vlm_model_name"].string_value == vlm
    assert configs[vlm].max_batch_size == batch  # NVIDIA's LLM-API model batches in flight, without a batch dimension


# --- gpu: NVIDIA's LLM-API model, checked against NVIDIA's own files (builders/reference/) ---


def test_llmapi_model_has_nvidias_tensors_settings_and_code(tmp_path, taxonomy_path):
    repository = render("gpu", tmp_path, taxonomy_path, llmapi_checkpoint_dir="/engines/x/checkpoint_fp8")
    llm = config_of(repository, "tensorrt_llm")
    reference = nvidia_reference()
    assert llm.backend == reference["backend"] == "python"
    assert [(t.name, pb.DataType.Name(t.data_type), list(t.dims), t.optional) for t in llm.input] == [
        (t["name"], t["data_type"], t["dims"], t["optional"]) for t in reference["inputs"]
    ]
    assert [t.name for t in llm.output] == [t["name"] for t in reference["outputs"]]
    settings = yaml.safe_load((repository / "tensorrt_llm" / "1" / "model.yaml").read_text())
    assert settings["model"] == "/engines/x/checkpoint_fp8" and settings["backend"] == "pytorch"
    assert settings["triton_config"] == {"max_batch_size": 0, "decoupled": False, "multimodal": True}
    assert settings["kv_cache_config"] == {"enable_block_reuse": True, "free_gpu_memory_fraction": 0.85, "dtype": "fp8"}
    assert settings["max_seq_len"] == GPU_DEFAULT_MAX_SEQ_LEN and settings["enable_chunked_prefill"] is True
    for name in ("model.py", "helpers.py"):  # NVIDIA's code, linked from the image, never copied here
        assert os.readlink(repository / "tensorrt_llm" / "1" / name) == f"{LLMAPI_MODEL_DIR}/{name}"
    assert reference["triton_config_keys"] == ["decoupled", "max_batch_size", "multimodal"]


def test_validation_holds_the_llmapi_model_to_nvidias_files(tmp_path, taxonomy_path):
    repository = render("gpu", tmp_path, taxonomy_path)
    llm = config_of(repository, "tensorrt_llm")
    next(t for t in llm.input if t.name == "image_url").name = "image_path"
    write_config(repository, llm)
    settings_path = repository / "tensorrt_llm" / "1" / "model.yaml"
    settings = yaml.safe_load(settings_path.read_text())
    settings["triton_config"]["max_batch_size"] = 8
    settings["kv_cache_config"]["enable_kv_reuse"] = True  # a misspelt LLM API option
    settings_path.write_text(yaml.safe_dump(settings))
    with pytest.raises(RepositoryInvalid) as caught:
        validate_repository(repository)
    problems = "\n".join(caught.value.problems)
    assert (
        "tensorrt_llm input image_path: {'data_type': 'TYPE_STRING'" in problems
        and "NVIDIA's model has None" in problems
    )
    assert "tensorrt_llm input image_url: None here" in problems
    assert "kv_cache_config.enable_kv_reuse is not a key NVIDIA's model or the LLM API reads" in problems
    assert "triton_config.max_batch_size differs from config.pbtxt's 0" in problems
    # the BLS speaking our batched contract to NVIDIA's unbatched model would fail its first request
    repository = render("gpu", tmp_path / "b", taxonomy_path, vlm_protocol="catalogvlm")
    with pytest.raises(
        RepositoryInvalid, match="sends tensorrt_llm batches of one, but tensorrt_llm has max_batch_size 0"
    ):
        validate_repository(repository)


def test_the_reference_extract_is_what_the_script_reads_from_nvidias_files(tmp_path):
    """The extract is written by a script reading NVIDIA's files: run it on files of that layout."""
    model = tmp_path / LLMAPI_MODEL_SUBDIR
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(
        'name: "tensorrt_llm"\nbackend: "python"\n# read when `triton_config.multimodal` is set\n'
        'input [ { name: "text_input" data_type: TYPE_STRING dims: [ -1 ] } ]\n'
        'output [ { name: "text_output" data_type: TYPE_STRING dims: [ -1 ] } ]\n'
    )
    (model / "1" / "model.yaml").write_text("model: m\nbackend: pytorch\ntriton_config:\n  max_batch_size: 0\n")
    extract = nvidia_reference_script.extract(tmp_path, "test")
    assert extract["inputs"] == [{"name": "text_input", "data_type": "TYPE_STRING", "dims": [-1], "optional": False}]
    assert extract["model_yaml_keys"] == ["backend", "model", "triton_config"]
    assert extract["triton_config_keys"] == ["max_batch_size", "multimodal"]
    assert "0a71057313ec0626527e164a8fc0205c5822e2f5" in nvidia_reference()["revision"]


def test_prompts_keep_two_images_out_of_each_others_cached_blocks(qwen_tokenizer_dir):
    """KV-cache block reuse hashes token ids, and every image is the same pad tokens (TensorRT-LLM #14125): the
    image's key, written before its pads, makes two images' prompts part before the first pad, while the shared
    instructions and product text stay one prefix and one image sent twice is the same prompt."""
    tokenizer = load_tokenizer(qwen_tokenizer_dir)
    red, blue = (images.product_photo(color) for color in ((200, 30, 30), (30, 30, 200)))
    a, b, again = (tokenizer.encode(category_prompt(Product(title="Mug", image=i))).ids for i in (red, blue, red))
    pad = tokenizer.token_to_id("<|image_pad|>")
    first_difference = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
    assert a == again and first_difference < a.index(pad)
    assert a[: a.index(pad)].count(pad) == 0 and first_difference > 300  # the instructions and product are shared


# --- gpu-engine (legacy): the engine-based ensemble ---


def test_validation_names_each_broken_wire(tmp_path, taxonomy_path):
    repository = render("gpu-engine", tmp_path, taxonomy_path)
    preprocess = config_of(repository, "preprocess")
    next(t for t in preprocess.output if t.name == "input_ids").data_type = pb.TYPE_INT64
    write_config(repository, preprocess)
    encoders = config_of(repository, "multimodal_encoders")
    encoders.input[0].name = "pixels"  # the ensemble still maps pixel_values
    write_config(repository, encoders)
    llm = config_of(repository, "tensorrt_llm")
    llm.max_batch_size = 4
    write_config(repository, llm)
    with pytest.raises(RepositoryInvalid) as caught:
        validate_repository(repository)
    problems = "\n".join(caught.value.problems)
    assert "tensor _input_ids: TYPE_INT64 from preprocess but TYPE_INT32 in tensorrt_llm" in problems
    assert "multimodal_encoders has no input pixel_values" in problems
    assert "required input multimodal_encoders.pixels is not mapped" in problems
    assert "batches up to 8 but tensorrt_llm only 4" in problems


def test_ensemble_steps_are_a_graph_not_a_sequence(tmp_path, taxonomy_path):
    repository = render("gpu-engine", tmp_path, taxonomy_path)
    vlm = config_of(repository, "vlm")
    steps = list(vlm.ensemble_scheduling.step)
    del vlm.ensemble_scheduling.step[:]
    vlm.ensemble_scheduling.step.extend(reversed(steps))  # Triton accepts any order
    write_config(repository, vlm)
    validate_repository(repository)
    next(s for s in vlm.ensemble_scheduling.step if s.model_name == "postprocess").input_map["sequence_length"] = "_len"
    write_config(repository, vlm)
    with pytest.raises(RepositoryInvalid, match=r"postprocess\.sequence_length reads _len, which nothing produces"):
        validate_repository(repository)


def test_validation_finds_placeholders_and_missing_bls_targets(tmp_path, taxonomy_path):
    repository = render("cpu", tmp_path, taxonomy_path, vlm_model_name="vlm_v2")
    with pytest.raises(RepositoryInvalid, match="calls 'vlm_v2'"):
        validate_repository(repository)
    path = repository / "taxonomy_validate" / "config.pbtxt"
    path.write_text(path.read_text() + '\nparameters: { key: "x" value: { string_value: "${forgotten}" } }\n')
    with pytest.raises(RepositoryInvalid, match=r"unfilled placeholder \$\{forgotten\}"):
        validate_repository(repository)


def test_bls_contract_mismatch_is_reported(tmp_path, taxonomy_path):
    repository = render("cpu", tmp_path, taxonomy_path)
    vlm = config_of(repository, "vlm")
    next(t for t in vlm.input if t.name == "max_tokens").data_type = pb.TYPE_INT64
    vlm.max_batch_size = 0
    write_config(repository, vlm)
    with pytest.raises(RepositoryInvalid, match="max_batch_size 0"):
        validate_repository(repository)
    vlm.max_batch_size = 8
    write_config(repository, vlm)
    with pytest.raises(RepositoryInvalid, match=r"max_tokens is TYPE_INT64 \[1\], the BLS uses TYPE_INT32"):
        validate_repository(repository)


def test_tensorrt_llm_config_uses_nvidias_backend_and_parameter_names(tmp_path, taxonomy_path):
    repository = render("gpu-engine", tmp_path, taxonomy_path, engine_dir="/engines/x/llm")
    llm = config_of(repository, "tensorrt_llm")
    parameters = {key: value.string_value for key, value in llm.parameters.items()}
    assert llm.backend == "tensorrtllm" and not llm.model_transaction_policy.decoupled
    assert parameters["gpt_model_type"] == "inflight_fused_batching"
    assert parameters["gpt_model_path"] == "/engines/x/llm"
    assert parameters["enable_kv_cache_reuse"] == parameters["enable_chunked_context"] == "true"
    assert parameters["exclude_input_in_output"] == "true"
    assert parameters["batch_scheduler_policy"] == "guaranteed_no_evict"
    assert float(parameters["kv_cache_free_gpu_mem_fraction"]) == 0.9
    assert parameters["max_beam_width"] == "1"
    assert llm.dynamic_batching.max_queue_delay_microseconds == 100
    assert {t.name for t in llm.input} >= {"prompt_table_extra_ids", "mrope_rotary_cos_sin", "mrope_position_deltas"}


def test_gpu_defaults_are_the_measured_token_budget(qwen_tokenizer_dir, taxonomy):
    checkpoint = Qwen2VLCheckpoint.from_dir(CHECKPOINT)
    settings = BudgetSettings()
    budget = measure_budget(
        Qwen2VLPromptEncoder.from_dirs(qwen_tokenizer_dir, checkpoint),
        taxonomy,
        Qwen2VLImageSettings(max_pixels=settings.max_pixels),
        settings,
    )
    assert settings.max_pixels == GPU_DEFAULT_MAX_PIXELS
    assert (budget.max_input_len, budget.max_seq_len) == (GPU_DEFAULT_MAX_INPUT_LEN, GPU_DEFAULT_MAX_SEQ_LEN)
    assert budget.visual_tokens_per_image == 512 and budget.patches_per_image == 2048
    assert budget.attribute_prompt_tokens > budget.category_prompt_tokens > 200
    assert budget.max_input_len == budget.attribute_prompt_tokens + 511 + 1024
    assert budget.max_multimodal_len == 8 * 512


def test_memory_estimate_of_the_7b_in_fp8():
    memory = estimate_memory(Qwen2VLCheckpoint.from_dir(CHECKPOINT))
    # FP8 linear layers + FP16 embeddings and lm_head: ~8.7 GB; the FP16 vision tower ~1.35 GB (675 M params)
    assert 8.0e9 < memory.language_weights_bytes < 9.5e9
    assert 1.2e9 < memory.vision_weights_bytes < 1.5e9
    assert memory.kv_bytes_per_token == 2 * 28 * 4 * 128  # K and V, 28 layers, 4 KV heads of 128, 1 byte
    assert memory.kv_cache_tokens > 2_000_000


# --- the `vlm` ensemble on a real tritonserver; vision engine and TensorRT-LLM replaced by stand-ins ---


def stand_in(repository: Path, model: str) -> None:
    """Keep the model's real config (its tensors), run it on the Python backend with a test double."""
    config = config_of(repository, model)
    config.backend = "python"
    for group in config.instance_group:
        group.kind = pb.ModelInstanceGroup.KIND_CPU
    write_config(repository, config)
    shutil.copy(STANDINS / model / "model.py", repository / model / "1" / "model.py")


@pytest.fixture(scope="module")
def gpu_vlm(tmp_path_factory, taxonomy_path, qwen_tokenizer_dir):
    from catalogvlm.servers import free_ports
    from catalogvlm.servers.triton import TritonServer, TritonServerConfig, prepare_installation

    root = tmp_path_factory.mktemp("gpu")
    values = {"hf_model_dir": str(CHECKPOINT), "tokenizer_dir": str(qwen_tokenizer_dir)}
    values |= {
        "preprocess_instances": "1",
        "postprocess_instances": "1",
        "max_input_len": "1500",
        "max_seq_len": "2012",
    }
    repository = render("gpu-engine", root / "repository", taxonomy_path, **values)
    for pipeline_model in ("product_understanding", "taxonomy_validate", "category_candidates"):  # tested elsewhere
        shutil.rmtree(repository / pipeline_model)
    for gpu_model in ("multimodal_encoders", "tensorrt_llm"):
        stand_in(repository, gpu_model)
    server = TritonServer(TritonServerConfig(repository, free_ports()), prepare_installation())
    server.start(root / "server.log")
    try:
        server.wait_ready()
        with grpcclient.InferenceServerClient(server.grpc_url) as client:
            yield client
    finally:
        server.stop()
        print((root / "server.log").read_text(errors="replace")[-3_000:])


def ask_vlm(client, prompt: str, image: bytes | None = None) -> str:
    inputs = [
        grpcclient.InferInput("text_input", [1, 1], "BYTES"),
        grpcclient.InferInput("max_tokens", [1, 1], "INT32"),
    ]
    inputs[0].set_data_from_numpy(np.array([[prompt.encode()]], dtype=np.object_))
    inputs[1].set_data_from_numpy(np.array([[256]], dtype=np.int32))
    if image is not None:
        inputs.append(grpcclient.InferInput("image_bytes", [1, len(image)], "UINT8"))
        inputs[-1].set_data_from_numpy(np.frombuffer(image, dtype=np.uint8)[None])
    result = client.infer("vlm", inputs)
    return result.as_numpy("text_output").reshape(-1)[0].decode()


@pytest.mark.server
def test_gpu_ensemble_carries_prompt_and_image_through_every_step(gpu_vlm):
    product = Product(title="Merino wool beanie, charcoal", image=images.product_photo(size=(320, 200), fmt="PNG"))
    echoed = ask_vlm(gpu_vlm, category_prompt(product), product.image)
    # tokenized by preprocess, through the encoder and LLM steps, detokenized by postprocess
    assert "Merino wool beanie, charcoal" in echoed and "Classify the product below" in echoed
    assert "Merino wool beanie" in ask_vlm(gpu_vlm, category_prompt(Product(title="Merino wool beanie")))


@pytest.mark.server
def test_gpu_ensemble_refuses_bad_input_by_name_and_keeps_serving(gpu_vlm):
    product = Product(title="Lamp", image=images.truncated_jpeg())
    with pytest.raises(InferenceServerException) as caught:
        ask_vlm(gpu_vlm, category_prompt(product), product.image)
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT" and "truncated or corrupt" in caught.value.message()
    long_product = Product(title="Lamp", description=" ".join(f"word{i}" for i in range(2_000)))
    with pytest.raises(InferenceServerException, match="the engine takes at most 1500"):
        ask_vlm(gpu_vlm, category_prompt(long_product))
    assert "Lamp" in ask_vlm(gpu_vlm, category_prompt(Product(title="Lamp")))
