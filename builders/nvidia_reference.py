"""Write the reference extract of NVIDIA's TensorRT-LLM LLM-API Triton model that static validation checks the gpu
profile against (builders/reference/trtllm_llmapi.json). It reads NVIDIA's own files from a TensorRT-LLM checkout:

- `triton_backend/all_models/llmapi/tensorrt_llm/config.pbtxt`: every input and output tensor (name, data type,
  dims, optional), parsed with Triton's model_config.proto;
- `.../1/model.yaml`: its top-level keys and its `triton_config` keys;
- the `triton_config.<key>` switches the config's comments document (e.g. `multimodal`, which turns on image_url).

    python -m catalogvlm.builders.nvidia_reference CHECKOUT --revision "v1.x.y (commit ...)" [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from .llmapi import LLMAPI_MODEL_SUBDIR, REFERENCE

DOCUMENTED_SWITCH = re.compile(r"`triton_config\.(\w+)`")
DEFAULT_OUT = Path(__file__).parent / "reference" / REFERENCE


def extract(checkout: Path, revision: str) -> dict[str, Any]:
    model_dir = checkout / LLMAPI_MODEL_SUBDIR
    config_text = (model_dir / "config.pbtxt").read_text(encoding="utf-8")
    config = text_format.Parse(config_text, pb.ModelConfig())
    model_yaml = yaml.safe_load((model_dir / "1" / "model.yaml").read_text(encoding="utf-8"))
    triton_config = model_yaml.get("triton_config", {})
    return {
        "source": "https://github.com/NVIDIA/TensorRT-LLM",
        "revision": revision,
        "files": [f"{LLMAPI_MODEL_SUBDIR}/config.pbtxt", f"{LLMAPI_MODEL_SUBDIR}/1/model.yaml"],
        "written_by": "python -m catalogvlm.builders.nvidia_reference",
        "backend": config.backend,
        "inputs": [_tensor(t, t.optional) for t in config.input],
        "outputs": [_tensor(t, False) for t in config.output],
        "model_yaml_keys": sorted(model_yaml),
        "triton_config": triton_config,
        "triton_config_keys": sorted(set(triton_config) | set(DOCUMENTED_SWITCH.findall(config_text))),
    }


def _tensor(tensor, optional: bool) -> dict[str, Any]:
    return {
        "name": tensor.name,
        "data_type": pb.DataType.Name(tensor.data_type),
        "dims": list(tensor.dims),
        "optional": optional,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", type=Path, help="a TensorRT-LLM checkout (or the llmapi files at their paths)")
    parser.add_argument("--revision", required=True, help="the tag or commit the files are from (provenance)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(extract(args.checkout, args.revision), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
