"""Reading catalogs and writing the three outputs, in JSON lines or Parquet, on any filesystem Beam reads.

Records travel as dicts with the prediction as a nested object; Parquet stores it as a JSON string column,
so a run may read a previous run written in either format.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.parquetio import ReadAllFromParquet, WriteToParquet

from catalogvlm.errors import ConfigurationError

from .records import ANSWERED_OUTPUTS, OUTPUTS

INPUT_FORMATS = ("jsonl", "csv", "parquet")
OUTPUT_FORMATS = ("jsonl", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_COMPRESSION = (".gz", ".bz2", ".zst", ".deflate")
PREDICTION_COLUMN = "prediction"

_RELEASE_COLUMNS = [
    ("id", pa.string()),
    ("fingerprint", pa.string()),
    ("model", pa.string()),
    ("model_version", pa.string()),
    ("taxonomy_release", pa.string()),
    ("catalogvlm_version", pa.string()),
]
_PREDICTION_SCHEMA = pa.schema(
    [
        *_RELEASE_COLUMNS,
        (PREDICTION_COLUMN, pa.string()),
        ("latency_ms", pa.float64()),
        ("predicted_at", pa.string()),
        ("carried_over_at", pa.string()),
    ]
)
# `catalogvlm embed`'s answers: the vectors as float32 lists (records.embedding_record)
_EMBEDDING_SCHEMA = pa.schema(
    [
        *_RELEASE_COLUMNS,
        ("title", pa.string()),
        ("text_model", pa.string()),
        ("text_vector", pa.list_(pa.float32())),
        ("image_model", pa.string()),
        ("image_vector", pa.list_(pa.float32())),
        ("embedded_at", pa.string()),
        ("carried_over_at", pa.string()),
    ]
)
_DEAD_LETTER_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("id", "fingerprint", "source", "status", "message", "failed_at")]
)
SCHEMAS = {"predictions": _PREDICTION_SCHEMA, "carried_over": _PREDICTION_SCHEMA, "dead_letter": _DEAD_LETTER_SCHEMA}
EMBEDDING_SCHEMAS = {**SCHEMAS, "predictions": _EMBEDDING_SCHEMA, "carried_over": _EMBEDDING_SCHEMA}


def input_format(pattern: str, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    name = pattern
    for compression in _COMPRESSION:
        name = name.removesuffix(compression)
    for suffix, found in _SUFFIXES.items():
        if name.endswith(suffix):
            return found
    raise ConfigurationError(f"cannot tell the format of {pattern}; pass --input-format {'|'.join(INPUT_FORMATS)}")


class ReadCatalog(beam.PTransform):
    """A file pattern → (source file, row). A JSON line that does not parse travels as its text, so that the
    parse step dead-letters it; CSV files are read whole (a quoted description may span lines)."""

    def __init__(self, pattern: str, file_format: str) -> None:
        super().__init__()
        self._pattern = pattern
        self._format = file_format

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        if self._format == "jsonl":
            lines = pipeline | "ReadLines" >> beam.io.ReadFromTextWithFilename(self._pattern)
            return lines | "ParseJson" >> beam.FlatMap(_json_row)
        if self._format == "csv":
            files = pipeline | "Match" >> fileio.MatchFiles(self._pattern) | "Open" >> fileio.ReadMatches()
            return files | "ParseCsv" >> beam.FlatMap(_csv_rows)
        patterns = pipeline | "Pattern" >> beam.Create([self._pattern])
        return patterns | "ReadParquet" >> ReadAllFromParquet(with_filename=True)


def _json_row(element: tuple[str, str]) -> Iterator[tuple[str, Any]]:
    source, line = element
    if line.strip():
        yield json_row(source, line)


def json_row(source: str, text: str) -> tuple[str, Any]:
    """(source, the decoded JSON), or (source, the text) for the parse step to dead-letter."""
    try:
        return source, json.loads(text)
    except json.JSONDecodeError:
        return source, text


def _csv_rows(readable: fileio.ReadableFile) -> Iterator[tuple[str, dict[str, str]]]:
    with readable.open() as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
        for row in csv.DictReader(text):
            yield readable.metadata.path, row


class WriteOutputs(beam.PTransform):
    """{"predictions", "carried_over", "dead_letter"} PCollections → DIR/<name>-SSSSS-of-NNNNN.<format>."""

    def __init__(self, directory: str, output_format: str, schemas: Mapping[str, pa.Schema] = SCHEMAS) -> None:
        super().__init__()
        self._directory = directory
        self._format = output_format
        self._schemas = schemas

    def expand(self, outputs: Mapping[str, beam.PCollection]) -> None:
        for name in OUTPUTS:
            prefix = FileSystems.join(self._directory, name)
            records = outputs[name]
            if self._format == "parquet":
                flat = records | f"Flatten{name}" >> beam.Map(_flat_record)
                flat | f"Write{name}" >> WriteToParquet(prefix, self._schemas[name], file_name_suffix=".parquet")
            else:
                text = records | f"Json{name}" >> beam.Map(json.dumps, ensure_ascii=False)
                text | f"Write{name}" >> beam.io.WriteToText(prefix, file_name_suffix=".jsonl")


def _flat_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record as its Parquet schema's columns: a prediction as JSON text, no carried_over_at yet as null."""
    flat = {"carried_over_at": None, **record}
    if PREDICTION_COLUMN in record:
        flat[PREDICTION_COLUMN] = json.dumps(record[PREDICTION_COLUMN], ensure_ascii=False)
    return flat


def _nested_record(record: Mapping[str, Any]) -> dict[str, Any]:
    nested = dict(record)
    if isinstance(nested.get(PREDICTION_COLUMN), str):
        nested[PREDICTION_COLUMN] = json.loads(nested[PREDICTION_COLUMN])
    return nested


class ReadPrevious(beam.PTransform):
    """A previous run's predictions and carried-over records (either format) → (id, record)."""

    def __init__(self, directory: str) -> None:
        super().__init__()
        self._patterns = previous_patterns(directory)

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        read = []
        for index, (pattern, file_format) in enumerate(self._patterns):
            if file_format == "parquet":
                rows = pipeline | f"Pattern{index}" >> beam.Create([pattern]) | f"Read{index}" >> ReadAllFromParquet()
            else:
                rows = (
                    pipeline | f"Read{index}" >> beam.io.ReadFromText(pattern) | f"Json{index}" >> beam.Map(json.loads)
                )
            read.append(rows)
        records = read | "AllPrevious" >> beam.Flatten()
        return records | "KeyById" >> beam.Map(lambda record: (record["id"], _nested_record(record)))


def previous_patterns(directory: str) -> list[tuple[str, str]]:
    """The (pattern, format) of a previous run's answered records that match files; no predictions is an error."""
    found = []
    for name in ANSWERED_OUTPUTS:
        for output_format in OUTPUT_FORMATS:
            pattern = FileSystems.join(directory, f"{name}*.{output_format}")
            if FileSystems.match([pattern])[0].metadata_list:
                found.append((pattern, output_format))
    if not found:
        raise ConfigurationError(f"--previous {directory} holds no predictions*.jsonl or predictions*.parquet")
    return found


@contextmanager
def work_dir(explicit: str | None) -> Iterator[str]:
    """`explicit` (any Beam filesystem, kept), or a local temporary folder (removed)."""
    if explicit:
        yield explicit
        return
    with tempfile.TemporaryDirectory(prefix="catalogvlm-") as folder:
        yield folder


def join(folder: str, name: str) -> str:
    return FileSystems.join(folder, name)


def write_records(folder: str, name: str, records: Iterable[Mapping[str, Any]]) -> str:
    """JSON lines at folder/name, on any Beam filesystem; its path."""
    path = join(folder, name)
    with FileSystems.create(path) as handle:
        for record in records:
            handle.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def read_outputs(directory: str) -> dict[str, list[dict[str, Any]]]:
    """A run's JSON-lines outputs, by name (for a caller that wants them back, e.g. `catalogvlm eval`)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name in OUTPUTS:
        matched = FileSystems.match([join(directory, f"{name}*.jsonl")])[0].metadata_list
        found[name] = [
            json.loads(line)
            for metadata in sorted(matched, key=lambda m: m.path)
            for line in FileSystems.open(metadata.path).read().decode("utf-8").splitlines()
            if line.strip()
        ]
    return found
