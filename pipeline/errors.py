"""The one error family of the pipeline; adapters map each kind to a Triton/KServe status."""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline raises."""


class InvalidInput(PipelineError, ValueError):
    """A request field is unusable; the message starts with the field's name (-> INVALID_ARG)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class ModelOutputError(PipelineError):
    """The VLM answered, but not with the JSON the stage asked for (retried)."""


class EngineError(PipelineError):
    """The VLM engine itself failed (retried)."""


class StageFailed(PipelineError):
    """A stage kept failing after its retries (-> UNAVAILABLE)."""

    def __init__(self, stage: str, attempts: int, last_error: Exception) -> None:
        super().__init__(f"{stage} failed after {attempts} attempts: {last_error}")
        self.stage = stage
        self.attempts = attempts
