"""What the worker serves, read from a rendered model repository: every model whose config names a pipeline
service (`pipeline_service` parameter), and the engine models their `vlm_model_name` points at."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tritonclient.grpc.model_config_pb2 as mc
from google.protobuf import text_format

from catalogvlm.errors import ConfigurationError

SERVICE_PARAMETER = "pipeline_service"
PRODUCT_UNDERSTANDING = "product_understanding"
TAXONOMY_VALIDATE = "taxonomy_validate"
CATEGORY_CANDIDATES = "category_candidates"
SERVICES = (PRODUCT_UNDERSTANDING, TAXONOMY_VALIDATE, CATEGORY_CANDIDATES)


@dataclass(frozen=True)
class RepositoryModel:
    config: mc.ModelConfig

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def parameters(self) -> dict[str, str]:
        return {key: value.string_value for key, value in self.config.parameters.items()}

    @property
    def service(self) -> str | None:
        return self.parameters.get(SERVICE_PARAMETER)


def read_model(repository: Path, name: str) -> RepositoryModel:
    path = repository / name / "config.pbtxt"
    if not path.is_file():
        raise ConfigurationError(f"{repository} has no model {name!r} (no {path})")
    return RepositoryModel(text_format.Parse(path.read_text(encoding="utf-8"), mc.ModelConfig()))


def served_models(repository: Path) -> list[RepositoryModel]:
    """The models the worker registers with Dynamo, in name order."""
    models = [read_model(repository, path.parent.name) for path in sorted(repository.glob("*/config.pbtxt"))]
    served = [model for model in models if model.service in SERVICES]
    if not any(model.service == PRODUCT_UNDERSTANDING for model in served):
        raise ConfigurationError(f"{repository} is not a rendered catalogvlm repository: no product_understanding")
    return served
