"""Static checks of a rendered model repository, for profiles that cannot be served here (gpu) and those that can.

Configs are parsed with Triton's own `model_config.proto` (tritonclient's model_config_pb2). Ensembles are
checked with Triton's rules (ensemble_utils.cc in triton-inference-server/core): every step's model exists,
its mapped names exist, its required inputs are mapped, tensors agree in data type and in shape (a non-batching
shape may spell out the batch dimension), the ensemble batches no more than its models, and every tensor a step
reads is produced upstream. The BLS's calls are checked against pipeline/contract.py in the protocol its
`vlm_protocol` names. NVIDIA's LLM-API model (the gpu profile's `vlm`) is checked against the reference extract of
NVIDIA's own files (builders/reference/): its tensors, and its model.yaml's keys and triton_config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from catalogvlm.errors import ConfigurationError
from catalogvlm.pipeline.contract import CANDIDATES_INPUTS, CANDIDATES_OUTPUTS, VLM_PROTOCOLS, TensorSpec

from .llmapi import KV_CACHE_ARGUMENTS, LLM_ARGUMENTS, nvidia_reference

PLACEHOLDER = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
BLS_MODEL = "product_understanding"
LLMAPI_SETTINGS = "1/model.yaml"  # what marks NVIDIA's LLM-API model in a repository


@dataclass(frozen=True)
class BlsCall:
    """A model the BLS calls: the parameter naming it, the tensors it sends and reads, whether they batch."""

    parameter: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batching: bool


class RepositoryInvalid(ConfigurationError, ValueError):
    """The repository would not load, or would fail its first request; `problems` lists every finding."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Tensor:
    data_type: int
    dims: tuple[int, ...]
    batching: bool
    where: str

    @property
    def full_dims(self) -> tuple[int, ...]:
        return ((-1,) if self.batching else ()) + self.dims


def load_configs(repository: Path) -> dict[str, pb.ModelConfig]:
    configs, problems = {}, []
    for path in sorted(Path(repository).glob("*/config.pbtxt")):
        text = path.read_text(encoding="utf-8")
        leftover = PLACEHOLDER.search(text)
        if leftover:
            problems.append(f"{path}: unfilled placeholder {leftover.group(0)}")
        try:
            config = text_format.Parse(text, pb.ModelConfig())
        except text_format.ParseError as error:
            problems.append(f"{path}: not a valid ModelConfig: {error}")
            continue
        if config.name != path.parent.name:
            problems.append(f"{path}: name {config.name!r} differs from its folder {path.parent.name!r}")
        if not (path.parent / "1").is_dir():
            problems.append(f"{path.parent}: no version folder 1/")
        configs[path.parent.name] = config
    if problems:
        raise RepositoryInvalid(problems)
    return configs


def validate_repository(repository: Path) -> dict[str, pb.ModelConfig]:
    """Every check at once; raises RepositoryInvalid listing all problems found."""
    configs = load_configs(repository)
    problems = [
        problem
        for config in configs.values()
        if config.platform == "ensemble"
        for problem in _ensemble(config, configs)
    ]
    problems += _bls_calls(configs)
    problems += [p for name, config in configs.items() for p in _llmapi_model(Path(repository) / name, config)]
    if problems:
        raise RepositoryInvalid(problems)
    return configs


def _dims_agree(a: Tensor, b: Tensor) -> bool:
    def same(x: tuple[int, ...], y: tuple[int, ...]) -> bool:
        return len(x) == len(y) and all(i == j or -1 in (i, j) for i, j in zip(x, y, strict=True))

    return same(a.dims, b.dims) or same(a.full_dims, b.full_dims)


def _agree(name: str, known: Tensor, other: Tensor, ensemble: str) -> list[str]:
    problems = []
    if known.data_type != other.data_type:
        problems.append(
            f"ensemble {ensemble}, tensor {name}: {pb.DataType.Name(known.data_type)} from {known.where} "
            f"but {pb.DataType.Name(other.data_type)} in {other.where}"
        )
    elif not _dims_agree(known, other):
        problems.append(
            f"ensemble {ensemble}, tensor {name}: shape {list(known.full_dims)} from {known.where} "
            f"but {list(other.full_dims)} in {other.where}"
        )
    return problems


def _ensemble(config: pb.ModelConfig, configs: dict[str, pb.ModelConfig]) -> list[str]:
    """Steps form a graph, not a sequence: every step's outputs are registered first, then its inputs checked."""
    name, batching = config.name, config.max_batch_size > 0
    tensors = {t.name: Tensor(t.data_type, tuple(t.dims), batching, f"{name} inputs") for t in config.input}
    problems: list[str] = []
    steps = []
    for step in config.ensemble_scheduling.step:
        model = configs.get(step.model_name)
        if model is None:
            problems.append(f"ensemble {name}: step model {step.model_name!r} is not in the repository")
            continue
        if model.max_batch_size and model.max_batch_size < config.max_batch_size:
            problems.append(
                f"ensemble {name} batches up to {config.max_batch_size} but {model.name} only {model.max_batch_size}"
            )
        steps.append((step, model))
    for step, model in steps:
        problems += _step_outputs(name, step, model, tensors)
    for step, model in steps:
        problems += _step_inputs(name, step, model, tensors)
    for output in config.output:
        declared = Tensor(output.data_type, tuple(output.dims), batching, f"{name} outputs")
        if output.name not in tensors:
            problems.append(f"ensemble {name}: output {output.name} is produced by no step")
        else:
            problems += _agree(output.name, tensors[output.name], declared, name)
    return problems


def _model_tensor(spec, model: pb.ModelConfig) -> Tensor:
    return Tensor(spec.data_type, tuple(spec.dims), model.max_batch_size > 0, model.name)


def _step_outputs(ensemble: str, step, model: pb.ModelConfig, tensors: dict[str, Tensor]) -> list[str]:
    problems = []
    outputs = {t.name: t for t in model.output}
    for key, tensor_name in step.output_map.items():
        if key not in outputs:
            problems.append(f"ensemble {ensemble}: {model.name} has no output {key}")
        elif tensor_name in tensors:
            problems += _agree(tensor_name, tensors[tensor_name], _model_tensor(outputs[key], model), ensemble)
        else:
            tensors[tensor_name] = _model_tensor(outputs[key], model)
    return problems


def _step_inputs(ensemble: str, step, model: pb.ModelConfig, tensors: dict[str, Tensor]) -> list[str]:
    problems = []
    inputs = {t.name: t for t in model.input}
    for key, tensor_name in step.input_map.items():
        if key not in inputs:
            problems.append(f"ensemble {ensemble}: {model.name} has no input {key}")
        elif tensor_name not in tensors:
            problems.append(f"ensemble {ensemble}: {model.name}.{key} reads {tensor_name}, which nothing produces")
        else:
            problems += _agree(tensor_name, tensors[tensor_name], _model_tensor(inputs[key], model), ensemble)
    unmapped = [n for n, spec in inputs.items() if n not in step.input_map and not spec.optional]
    problems += [f"ensemble {ensemble}: required input {model.name}.{n} is not mapped" for n in unmapped]
    return problems


def _bls_calls(configs: dict[str, pb.ModelConfig]) -> list[str]:
    """Each model the BLS calls is in the repository, batches as the protocol says, and has its tensors."""
    if BLS_MODEL not in configs:
        return [f"{BLS_MODEL} is not in the repository"]
    parameters = configs[BLS_MODEL].parameters
    protocol = VLM_PROTOCOLS.get(parameters["vlm_protocol"].string_value)
    if protocol is None:
        return [f"{BLS_MODEL}: vlm_protocol must be one of {', '.join(VLM_PROTOCOLS)}"]
    calls = (
        BlsCall("vlm_model_name", protocol.inputs, protocol.outputs, protocol.batching),
        BlsCall("candidates_model_name", CANDIDATES_INPUTS, CANDIDATES_OUTPUTS, batching=True),
    )
    problems = []
    for call in calls:
        target = parameters[call.parameter].string_value
        model = configs.get(target)
        if model is None:
            problems.append(f"{BLS_MODEL} calls {target!r} ({call.parameter}), which is not in the repository")
        elif call.batching and model.max_batch_size < 1:
            problems.append(f"{BLS_MODEL} sends {target} batches of one, but {target} has max_batch_size 0")
        elif not call.batching and model.max_batch_size > 0:
            problems.append(f"{BLS_MODEL} sends {target} tensors without a batch dimension, but it batches")
        else:
            problems += _contract(target, model.input, call.inputs, "input")
            problems += _contract(target, model.output, call.outputs, "output")
    return problems


def _llmapi_model(folder: Path, config: pb.ModelConfig) -> list[str]:
    """NVIDIA's LLM-API model as its own files at the pinned release have it: the same tensors, a model.yaml of
    known keys whose triton_config agrees with the config (NVIDIA's model sets both from it at load time)."""
    if not (folder / LLMAPI_SETTINGS).is_file():
        return []
    where = f"{folder.name}/{LLMAPI_SETTINGS}"
    reference = nvidia_reference()
    try:
        settings = yaml.safe_load((folder / LLMAPI_SETTINGS).read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        return [f"{where}: not YAML: {error}"]
    if not isinstance(settings, dict):
        return [f"{where}: not a mapping of LLM API options"]
    problems = _same_tensors(folder.name, config, reference)
    unknown = set(settings) - set(reference["model_yaml_keys"]) - LLM_ARGUMENTS
    unknown |= {f"kv_cache_config.{k}" for k in set(settings.get("kv_cache_config", {})) - KV_CACHE_ARGUMENTS}
    unknown |= {
        f"triton_config.{k}" for k in set(settings.get("triton_config", {})) - set(reference["triton_config_keys"])
    }
    problems += [f"{where}: {key} is not a key NVIDIA's model or the LLM API reads" for key in sorted(unknown)]
    triton_config = settings.get("triton_config", {})
    if triton_config.get("max_batch_size") != config.max_batch_size:
        problems.append(f"{where}: triton_config.max_batch_size differs from config.pbtxt's {config.max_batch_size}")
    if bool(triton_config.get("decoupled")) != config.model_transaction_policy.decoupled:
        problems.append(f"{where}: triton_config.decoupled differs from config.pbtxt's transaction policy")
    if settings.get("backend") != "pytorch":
        problems.append(f"{where}: backend must be pytorch (the LLM API's supported backend)")
    return problems


def _same_tensors(model: str, config: pb.ModelConfig, reference: dict) -> list[str]:
    declared = {
        "inputs": {t.name: _described(t, t.optional) for t in config.input},
        "outputs": {t.name: _described(t, False) for t in config.output},  # outputs have no `optional`
    }
    problems = []
    for kind, tensors in declared.items():
        expected = {t["name"]: {k: t[k] for k in ("data_type", "dims", "optional")} for t in reference[kind]}
        for name in sorted(expected.keys() | tensors.keys()):
            if expected.get(name) != tensors.get(name):
                problems.append(
                    f"{model} {kind[:-1]} {name}: {tensors.get(name)} here, NVIDIA's model has {expected.get(name)}"
                )
    return problems


def _described(tensor, optional: bool) -> dict:
    return {"data_type": pb.DataType.Name(tensor.data_type), "dims": list(tensor.dims), "optional": optional}


def _contract(model: str, declared: Iterable, expected: tuple[TensorSpec, ...], kind: str) -> list[str]:
    found = {t.name: t for t in declared}
    problems = []
    for spec in expected:
        tensor = found.get(spec.name)
        if tensor is None:
            problems.append(f"{model} lacks the {kind} {spec.name} the BLS uses")
        elif pb.DataType.Name(tensor.data_type) != spec.data_type or tuple(tensor.dims) != spec.dims:
            problems.append(
                f"{model} {kind} {spec.name} is {pb.DataType.Name(tensor.data_type)} {list(tensor.dims)}, "
                f"the BLS uses {spec.data_type} {list(spec.dims)}"
            )
        elif kind == "input" and tensor.optional != spec.optional:
            problems.append(f"{model} input {spec.name} optional={tensor.optional}, the contract says {spec.optional}")
    return problems
