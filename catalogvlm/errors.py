"""The one error family of catalogvlm and what each kind means on the wire and on the command line.

Every error the project raises on purpose derives from `CatalogvlmError`. A kind carries the gRPC status
name a server answers with (KServe v2 over gRPC, the same for Triton and Dynamo) and the exit code the
`catalogvlm` command returns; the Triton adapter, the Dynamo adapter and the client's reverse mapping are
all derived from these attributes, never written out again.
"""

from __future__ import annotations

# The gRPC status names the services answer with, and what a client should do about each.
INVALID_ARGUMENT = "INVALID_ARGUMENT"  # the request is at fault: never retried
UNAVAILABLE = "UNAVAILABLE"  # the service is busy or a stage kept failing: retried with backoff
INTERNAL = "INTERNAL"  # our bug: reported, not retried
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"  # the caller's own deadline passed: the caller decides what next
RETRYABLE_STATUSES = frozenset({UNAVAILABLE})


class CatalogvlmError(Exception):
    """Base of every error catalogvlm raises on purpose; its message is one line a user can act on."""

    status: str = INTERNAL
    exit_code: int = 1


class ConfigurationError(CatalogvlmError):
    """Something the operator provides (a path, a setting, a template value) is missing or wrong."""

    exit_code = 2
