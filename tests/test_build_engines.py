"""`catalogvlm build-engines --dry-run`: complete commands, limits derived from the measured budget, for the gpu
profile (ModelOpt's FP8 export for NVIDIA's LLM-API model) and the legacy gpu-engine profile (TensorRT engines)."""

from __future__ import annotations

import json
import re
import shlex
import shutil

import yaml

from catalogvlm.bench.corpora import QWEN2VL_7B_CONFIG
from catalogvlm.builders.engines import PROCESSOR_FILES, copy_processor_files, limit_position_embeddings
from catalogvlm.builders.repository import GPU_DEFAULT_MAX_SEQ_LEN
from catalogvlm.cli import build_parser, main

CHECKPOINT = QWEN2VL_7B_CONFIG


def dry_run(capsys, tmp_path, qwen_tokenizer_dir, *extra: str) -> str:
    hf_model = tmp_path / "Qwen2-VL-7B-Instruct"  # config.json only: no weights needed
    hf_model.mkdir(exist_ok=True)
    shutil.copy(CHECKPOINT / "config.json", hf_model)
    arguments = ["build-engines", "--hf-model", str(hf_model), "--tokenizer-dir", str(qwen_tokenizer_dir)]
    assert main([*arguments, "--out", str(tmp_path / "engines"), "--dry-run", *extra]) == 0
    assert not (tmp_path / "engines").exists()  # a dry run writes nothing
    return capsys.readouterr().out


def flag(output: str, command: str, name: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(command))
    return re.search(rf"--{name} (\S+)", line).group(1)


def test_gpu_dry_run_exports_one_fp8_checkpoint_for_triton_and_dynamo(capsys, tmp_path, qwen_tokenizer_dir):
    out = dry_run(capsys, tmp_path, qwen_tokenizer_dir)
    ptq = next(line for line in out.splitlines() if "hf_ptq.py" in line)
    assert ptq.startswith("python3 /opt/modelopt/examples/llm_ptq/hf_ptq.py --pyt_ckpt_path")
    assert "--qformat fp8 --kv_cache_qformat fp8 --calib_size 512" in ptq
    assert f"--export_path {tmp_path / 'engines' / 'checkpoint_fp8'}" in ptq
    assert "trtllm-build" not in out  # the PyTorch backend loads the export as it is
    render = shlex.split(out[out.index("catalogvlm render-repo --profile gpu ") :])
    args = build_parser().parse_args(render[1:])
    values = dict(value.split("=", 1) for value in args.values)
    assert values["llmapi_checkpoint_dir"] == str(tmp_path / "engines" / "checkpoint_fp8")
    options = yaml.safe_load(values["llm_api_options"])  # the same options Dynamo's workers load from the file
    assert options["max_seq_len"] == GPU_DEFAULT_MAX_SEQ_LEN and options["max_batch_size"] == 64
    assert f"the LLM API's options in {tmp_path / 'engines' / 'llm_api_options.yaml'}" in out


def test_processor_files_join_the_export(tmp_path):
    hf, export = tmp_path / "hf", tmp_path / "export"
    hf.mkdir(), export.mkdir()
    (hf / "preprocessor_config.json").write_text("{}")
    (export / "generation_config.json").write_text("exported")
    (hf / "generation_config.json").write_text("original")
    copy_processor_files(hf, export)
    assert (export / "preprocessor_config.json").read_text() == "{}"
    assert (export / "generation_config.json").read_text() == "exported"  # the export's own file is kept
    assert not (export / "chat_template.json").exists() and "chat_template.json" in PROCESSOR_FILES


def test_engine_dry_run_prints_a_complete_consistent_build(capsys, tmp_path, qwen_tokenizer_dir):
    out = dry_run(capsys, tmp_path, qwen_tokenizer_dir, "--profile", "gpu-engine")
    quantize = next(line for line in out.splitlines() if "quantize.py" in line)
    assert "--qformat fp8 --kv_cache_dtype fp8 --calib_size 512" in quantize
    assert "/app/tensorrt_llm/examples/quantization/quantize.py" in quantize
    for option in ("--use_paged_context_fmha enable", "--use_fp8_context_fmha enable", "--gemm_plugin auto"):
        assert option in next(line for line in out.splitlines() if line.startswith("trtllm-build"))
    max_input, max_seq = int(flag(out, "trtllm-build", "max_input_len")), int(flag(out, "trtllm-build", "max_seq_len"))
    assert max_seq == max_input + 512
    assert int(flag(out, "trtllm-build", "max_multimodal_len")) == 8 * 512
    assert int(flag(out, "trtllm-build", "max_num_tokens")) == max_input + 7
    vision = next(line for line in out.splitlines() if "build_multimodal_engine.py" in line)
    assert (
        "--model_type qwen2_vl" in vision
        and flag(out, "python3 /app/tensorrt_llm/examples/models", "max_hw_dims") == "2048"
    )
    # the repository is rendered against the same engines and limits
    render = next(line for line in out.splitlines() if line.startswith("catalogvlm render-repo --profile gpu-engine"))
    assert f"--set max_input_len={max_input}" in render and f"--set max_seq_len={max_seq}" in render
    assert f"--set engine_dir={tmp_path / 'engines' / 'llm'}" in render
    assert f"max_position_embeddings in {tmp_path / 'engines' / 'checkpoint_fp8' / 'config.json'}" in out
    assert "28 KiB per token" in out


def test_limits_follow_the_flags(capsys, tmp_path, qwen_tokenizer_dir):
    base = dry_run(capsys, tmp_path, qwen_tokenizer_dir, "--profile", "gpu-engine")
    out = dry_run(
        capsys, tmp_path, qwen_tokenizer_dir, "--profile", "gpu-engine", "--max-batch-size", "4",
        "--max-pixels", str(28 * 28 * 256),
    )  # fmt: skip
    assert int(flag(out, "trtllm-build", "max_multimodal_len")) == 4 * 256
    assert int(flag(base, "trtllm-build", "max_input_len")) - int(flag(out, "trtllm-build", "max_input_len")) == 256
    assert flag(out, "python3 /app/tensorrt_llm/examples/models", "max_hw_dims") == "1024"
    assert flag(out, "python3 /app/tensorrt_llm/examples/models", "max_batch_size") == "4"


def test_missing_checkpoint_files_are_named(capsys, tmp_path):
    arguments = ["build-engines", "--hf-model", str(tmp_path), "--out", str(tmp_path / "e"), "--dry-run"]
    assert main(arguments) == 2
    assert "config.json not found: pass the Hugging Face Qwen2-VL checkpoint folder" in capsys.readouterr().err
    shutil.copy(CHECKPOINT / "config.json", tmp_path)
    assert main(arguments) == 2
    assert "tokenizer.json not found" in capsys.readouterr().err


def test_position_embeddings_are_limited_in_the_built_checkpoint(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"architecture": "Qwen2VLForConditionalGeneration", "max_position_embeddings": 32768}))
    limit_position_embeddings(config, GPU_DEFAULT_MAX_SEQ_LEN)
    assert json.loads(config.read_text()) == {
        "architecture": "Qwen2VLForConditionalGeneration",
        "max_position_embeddings": GPU_DEFAULT_MAX_SEQ_LEN,
    }
