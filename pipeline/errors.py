"""The pipeline's errors; each kind carries the status a server answers with (see catalogvlm.errors).

Server adapters and the client derive their mappings from `status` alone, so a new kind needs no edit
anywhere else.
"""

from __future__ import annotations

import logging

from catalogvlm.errors import INVALID_ARGUMENT, UNAVAILABLE, CatalogvlmError


class PipelineError(CatalogvlmError):
    """Base of every error the pipeline raises."""


class InvalidInput(PipelineError, ValueError):
    """A request field is unusable; the message starts with the field's name."""

    status = INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class ModelOutputError(PipelineError):
    """The VLM answered, but not with the JSON the stage asked for (the stage retries)."""


class EngineError(PipelineError):
    """The VLM engine itself failed (the stage retries)."""

    status = UNAVAILABLE


class StageFailed(PipelineError):
    """A stage kept failing after its retries."""

    status = UNAVAILABLE

    def __init__(self, stage: str, attempts: int, last_error: Exception) -> None:
        super().__init__(f"{stage} failed after {attempts} attempts: {last_error}")
        self.stage = stage
        self.attempts = attempts


class Overloaded(PipelineError):
    """Refused at once: the instance carries as many products as it may, or is shutting down."""

    status = UNAVAILABLE


def status_of(error: BaseException) -> str:
    """The status a server answers `error` with: its own, or INTERNAL for anything unexpected."""
    return error.status if isinstance(error, CatalogvlmError) else CatalogvlmError.status


def public_message(error: BaseException, log: logging.Logger) -> str:
    """What a caller is told: our own errors' messages; for anything else only its type, the rest logged."""
    if isinstance(error, CatalogvlmError):
        return str(error)
    log.error("unexpected error", exc_info=error)
    return f"internal error ({type(error).__name__}); the server log has the details"
