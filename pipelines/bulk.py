"""The bulk pipeline (a catalog, once) and the streaming one (product updates, forever), assembled from the
same transforms: parse → skip what is unchanged → predict through the server → three outputs. `catalogvlm batch`
classifies; `catalogvlm embed` runs the same pipelines with product_embeddings and writes vectors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from catalogvlm.client import ModelRelease

from .catalog_io import (
    EMBEDDING_SCHEMAS,
    SCHEMAS,
    ReadCatalog,
    ReadPrevious,
    WriteOutputs,
    input_format,
    json_row,
)
from .inference import BatchOptions, ProductModelHandler, ServerOptions
from .records import CARRIED_OVER, DEAD_LETTER, DEFAULT_ID_FIELD, PREDICTIONS, embedding_record, prediction_record
from .streams import ReadUpdates, WriteAnswers, parse_endpoint
from .transforms import (
    METRICS_NAMESPACE,
    DropUnchanged,
    ParseProducts,
    Predict,
    SplitUnchanged,
    ToRecord,
    read_uri,
)

Outputs = dict[str, beam.PCollection]


@dataclass(frozen=True)
class Operation:
    """What the pipeline asks the server for each product, and how the answers are written."""

    method: str  # the client's: classify (product_understanding) or embed (product_embeddings)
    to_record: ToRecord
    schemas: Mapping[str, pa.Schema]


CLASSIFY = Operation("classify", prediction_record, SCHEMAS)
EMBED = Operation("embed", embedding_record, EMBEDDING_SCHEMAS)
OPERATIONS = {operation.method: operation for operation in (CLASSIFY, EMBED)}


@dataclass(frozen=True)
class Job:
    """What to classify (or embed), through which server, and where the answers go."""

    server: ServerOptions
    input: str
    output: str
    previous: str | None = None
    id_field: str = DEFAULT_ID_FIELD
    input_format: str | None = None  # from the input's suffix when not given
    output_format: str = "jsonl"
    batching: BatchOptions = field(default_factory=BatchOptions)
    operation: Operation = CLASSIFY

    def handler(self) -> ProductModelHandler:
        return ProductModelHandler(self.server, self.batching, read_uri, self.operation.method)

    def predict(self, release: ModelRelease) -> Predict:
        return Predict(self.handler(), release, self.operation.to_record)


def classify_catalog(pipeline: beam.Pipeline, job: Job, release: ModelRelease) -> Outputs:
    """A catalog → {predictions, carried_over, dead_letter}; with `job.previous`, unchanged products are
    carried over from it without a call."""
    rows = pipeline | "ReadCatalog" >> ReadCatalog(job.input, input_format(job.input, job.input_format))
    parsed = rows | "Parse" >> beam.ParDo(ParseProducts(job.id_field, release)).with_outputs(DEAD_LETTER, main="ok")
    # A file's rows arrive in one bundle (a CSV is read whole): spread them so every worker gets its share.
    products = parsed.ok | "Spread" >> beam.Reshuffle()
    if job.previous:
        current = products | "KeyById" >> beam.Map(lambda product: (product.id, product))
        previous = pipeline | "ReadPrevious" >> ReadPrevious(job.previous)
        joined = {"current": current, "previous": previous} | "JoinPrevious" >> beam.CoGroupByKey()
        split = joined | "SplitUnchanged" >> beam.ParDo(SplitUnchanged()).with_outputs(CARRIED_OVER, main="changed")
        products, carried = split.changed, split[CARRIED_OVER]
    else:
        carried = pipeline | "NothingCarried" >> beam.Create([])
    predicted = products | "Predict" >> job.predict(release)
    dead = (parsed[DEAD_LETTER], predicted[DEAD_LETTER]) | "DeadLetters" >> beam.Flatten()
    return {PREDICTIONS: predicted[PREDICTIONS], CARRIED_OVER: carried, DEAD_LETTER: dead}


def classify_updates(messages: beam.PCollection, job: Job, release: ModelRelease, source: str) -> Outputs:
    """Product updates (JSON messages, bytes) → {predictions, dead_letter}; per product id, an update whose
    fingerprint equals the last one predicted is dropped (counted as unchanged_dropped)."""
    rows = messages | "Decode" >> beam.Map(lambda message: json_row(source, message.decode("utf-8", "replace")))
    parsed = rows | "Parse" >> beam.ParDo(ParseProducts(job.id_field, release)).with_outputs(DEAD_LETTER, main="ok")
    keyed = parsed.ok | "KeyById" >> beam.Map(lambda product: (product.id, product))
    changed = keyed | "DropUnchanged" >> beam.ParDo(DropUnchanged())
    predicted = changed | "Predict" >> job.predict(release)
    dead = (parsed[DEAD_LETTER], predicted[DEAD_LETTER]) | "DeadLetters" >> beam.Flatten()
    return {PREDICTIONS: predicted[PREDICTIONS], DEAD_LETTER: dead}


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Beam's options as given; without a runner, the DirectRunner with a worker process per core (batch)."""
    options = PipelineOptions(beam_args)
    if options.view_as(StandardOptions).runner is None and not is_streaming(options):
        local = [
            "--direct_running_mode=multi_processing",
            f"--direct_num_workers={os.cpu_count() or 1}",
            "--default_sdk_harness_log_level=WARNING",  # the worker processes log every step at INFO
        ]
        options = PipelineOptions([*local, *beam_args])
    return options


def run_catalog(job: Job, options: PipelineOptions) -> dict[str, int]:
    """Run the bulk pipeline to completion on the runner `options` name; the counters it kept."""
    pipeline = beam.Pipeline(options=options)
    outputs = classify_catalog(pipeline, job, served_release(job))
    _ = outputs | "Write" >> WriteOutputs(job.output, job.output_format, job.operation.schemas)
    return _run(pipeline)


def run_updates(job: Job, options: PipelineOptions) -> dict[str, int]:
    """Run the streaming pipeline from `job.input` to `job.output` (stream endpoints) until it is cancelled."""
    source, sink = parse_endpoint(job.input), parse_endpoint(job.output)
    pipeline = beam.Pipeline(options=options)
    messages = pipeline | "ReadUpdates" >> ReadUpdates(source)
    outputs = classify_updates(messages, job, served_release(job), source=job.input)
    _ = outputs | "WriteAnswers" >> WriteAnswers(sink)
    return _run(pipeline)


def served_release(job: Job) -> ModelRelease:
    with job.server.classifier() as classifier:
        return classifier.model_release()


def _run(pipeline: beam.Pipeline) -> dict[str, int]:
    result = pipeline.run()
    result.wait_until_finish()
    return counters(result)


def summary(counts: dict[str, int]) -> dict[str, int]:
    """Where the rows went. `unaccounted` is 0 when every row ended in exactly one place."""
    ended = {
        "predicted": counts.get("predicted", 0),
        "carried_over": counts.get("carried_over", 0),
        "dead_letter": counts.get("rows_refused", 0) + counts.get("failed", 0),
        "unchanged_dropped": counts.get("unchanged_dropped", 0),
    }
    rows = counts.get("rows_read", 0)
    return {"rows": rows, **ended, "unaccounted": rows - sum(ended.values())}


def counters(result: beam.runners.runner.PipelineResult) -> dict[str, int]:
    """The pipeline's `catalogvlm` counters (committed values, or attempted where a runner has only those)."""
    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    totals: dict[str, int] = {}
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    return totals


def is_streaming(options: PipelineOptions) -> bool:
    return bool(options.view_as(StandardOptions).streaming)
