"""The Beam transforms of the bulk and streaming pipelines: catalog rows in, the three outputs out.

    rows ─ ParseProducts ─┬─ batch: SplitUnchanged (vs --previous) ─┬─ carried_over
                          │  streaming: DropUnchanged (keyed state)  └─ Predict ─┬─ predictions
                          └─ dead_letter ◄───────────────────────────────────────┘

Each step counts what it sees in Beam metrics (namespace `catalogvlm`), and every row ends in exactly one output.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import PredictionResult, RunInference
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from catalogvlm.client import CatalogError, ModelRelease

from .inference import ProductModelHandler
from .records import (
    CARRIED_OVER,
    DEAD_LETTER,
    IMAGE_FIELD,
    PREDICTIONS,
    CatalogProduct,
    RowError,
    carried_over_record,
    catalog_product,
    dead_letter_record,
    prediction_record,
)

METRICS_NAMESPACE = "catalogvlm"
ToRecord = Callable[[CatalogProduct, ModelRelease, Any], dict[str, Any]]  # an answer's record


def read_uri(uri: str) -> bytes:
    """The bytes at a path or URI that Beam's filesystems read (local, gs://, s3://, hdfs://, ...)."""
    with FileSystems.open(uri) as handle:
        return handle.read()


def resolve(reference: str, source: str) -> str:
    """A row's image reference, relative to the folder of the file the row came from unless absolute."""
    if FileSystems.get_scheme(reference) is not None or posixpath.isabs(reference) or not source:
        return reference
    folder = source.rsplit("/", 1)[0] if "/" in source else "."
    return FileSystems.join(folder, reference)


class ParseProducts(beam.DoFn):
    """(source, row) → CatalogProduct, or a dead letter naming the field (a row that is not even JSON: `row`)."""

    def __init__(self, id_field: str, release: ModelRelease) -> None:
        self._id_field = id_field
        self._release = release
        self._read = Metrics.counter(METRICS_NAMESPACE, "rows_read")
        self._refused = Metrics.counter(METRICS_NAMESPACE, "rows_refused")

    def process(self, element: tuple[str, Mapping[str, Any] | str]) -> Iterator[Any]:
        source, row = element
        self._read.inc()
        try:
            if not isinstance(row, Mapping):
                raise RowError("row", f"is not a JSON object: {str(row)[:200]!r}")
            if row.get(IMAGE_FIELD):  # kept resolved: the image is read again, elsewhere, when the product is sent
                row = {**row, IMAGE_FIELD: resolve(str(row[IMAGE_FIELD]), source)}
            yield catalog_product(row, source, self._id_field, self._release, read_uri)
        except RowError as error:
            self._refused.inc()
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, dead_letter_record(error.product_id, None, source, error))


class SplitUnchanged(beam.DoFn):
    """Per id, after CoGroupByKey with the previous run: a product whose fingerprint the previous run answered
    is carried over without a call; any other goes on to be predicted."""

    def __init__(self) -> None:
        self._carried = Metrics.counter(METRICS_NAMESPACE, "carried_over")
        self._changed = Metrics.counter(METRICS_NAMESPACE, "changed_or_new")

    def process(self, element: tuple[str, Mapping[str, list[Any]]]) -> Iterator[Any]:
        _, groups = element
        answered = {record["fingerprint"]: record for record in groups["previous"]}
        for product in groups["current"]:
            previous = answered.get(product.fingerprint)
            if previous is None:
                self._changed.inc()
                yield product
            else:
                self._carried.inc()
                yield beam.pvalue.TaggedOutput(CARRIED_OVER, carried_over_record(previous))


class DropUnchanged(beam.DoFn):
    """Streaming: keyed by product id, the last fingerprint sent for prediction; an update that changes nothing
    the answer depends on is dropped. State is kept per id for the pipeline's life (and in its snapshots)."""

    LAST_FINGERPRINT = ReadModifyWriteStateSpec("last_fingerprint", beam.coders.StrUtf8Coder())

    def __init__(self) -> None:
        self._dropped = Metrics.counter(METRICS_NAMESPACE, "unchanged_dropped")

    def process(
        self,
        element: tuple[str, CatalogProduct],
        last=beam.DoFn.StateParam(LAST_FINGERPRINT),  # noqa: B008 - Beam's way of asking for state
    ) -> Iterator[CatalogProduct]:
        _, product = element
        if last.read() == product.fingerprint:
            self._dropped.inc()
            return
        last.write(product.fingerprint)
        yield product


class RouteOutcomes(beam.DoFn):
    """RunInference's results → answer records (a prediction's, an embedding's), or dead letters with the status
    and message."""

    def __init__(self, release: ModelRelease, to_record: ToRecord = prediction_record) -> None:
        self._release = release
        self._to_record = to_record
        self._predicted = Metrics.counter(METRICS_NAMESPACE, "predicted")
        self._failed = Metrics.counter(METRICS_NAMESPACE, "failed")

    def process(self, result: PredictionResult) -> Iterator[Any]:
        product: CatalogProduct = result.example
        outcome = result.inference
        if isinstance(outcome, CatalogError):
            self._failed.inc()
            record = dead_letter_record(product.id, product.fingerprint, product.source, outcome)
            yield beam.pvalue.TaggedOutput(DEAD_LETTER, record)
        else:
            self._predicted.inc()
            yield self._to_record(product, self._release, outcome)


class Predict(beam.PTransform):
    """Products → {"predictions", "dead_letter"} through the server (batched by the handler's bounds)."""

    def __init__(self, handler: ProductModelHandler, release: ModelRelease, to_record: ToRecord = prediction_record):
        super().__init__()
        self._handler = handler
        self._release = release
        self._to_record = to_record

    def expand(self, products: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return (
            products
            | "RunInference" >> RunInference(self._handler)
            | "Route"
            >> beam.ParDo(RouteOutcomes(self._release, self._to_record)).with_outputs(DEAD_LETTER, main=PREDICTIONS)
        )
