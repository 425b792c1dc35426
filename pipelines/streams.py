"""Where a streaming run reads product updates and writes its answers: Kafka or Pub/Sub, with Beam's own IOs.

    --input  kafka://BROKER:PORT/TOPIC                 ReadFromKafka (a JSON product per message value)
    --output kafka://BROKER:PORT/PREFIX                WriteToKafka to PREFIX.predictions and PREFIX.dead_letter
                                                       (message key: the product id, so a compacted topic
                                                       keeps each product's last answer)
    --input  pubsub://projects/P/subscriptions/S       ReadFromPubSub (needs apache-beam[gcp])
    --output pubsub://projects/P/topics/PREFIX         WriteToPubSub to PREFIX.predictions and PREFIX.dead_letter

Beam's Kafka IO is a cross-language transform: the runner starts Beam's Java expansion service (a JVM), so it
needs Java where the pipeline is launched. No Kafka broker or Pub/Sub can run on the machines this project is
tested on, so these endpoints are built from Beam's documented options but were not run here; the streaming
transforms themselves are tested with Beam's TestStream (tests/test_bulk_pipeline.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import apache_beam as beam

from catalogvlm.errors import ConfigurationError

KAFKA, PUBSUB = "kafka", "pubsub"
CONSUMER_GROUP = "catalogvlm-batch"


@dataclass(frozen=True)
class StreamEndpoint:
    kind: str  # KAFKA or PUBSUB
    address: str  # Kafka's bootstrap servers ("" for Pub/Sub)
    name: str  # a topic (Kafka), or a subscription or topic path (Pub/Sub)

    def topic(self, output: str) -> str:
        return f"{self.name}.{output}"


def parse_endpoint(spec: str) -> StreamEndpoint:
    kind, separator, rest = spec.partition("://")
    if not separator or kind not in (KAFKA, PUBSUB) or "/" not in rest:
        raise ConfigurationError(f"{spec!r}: a stream is kafka://BROKER:PORT/TOPIC or pubsub://projects/P/...")
    if kind == KAFKA:
        address, name = rest.split("/", 1)
        return StreamEndpoint(KAFKA, address, name)
    return StreamEndpoint(PUBSUB, "", rest)


def is_stream(spec: str) -> bool:
    return spec.startswith((f"{KAFKA}://", f"{PUBSUB}://"))


class ReadUpdates(beam.PTransform):
    """An endpoint → product updates, each a JSON message (bytes)."""

    def __init__(self, endpoint: StreamEndpoint) -> None:
        super().__init__()
        self._endpoint = endpoint

    def expand(self, pipeline: beam.pvalue.PBegin) -> beam.PCollection:
        if self._endpoint.kind == PUBSUB:
            return pipeline | "ReadPubSub" >> beam.io.ReadFromPubSub(subscription=self._endpoint.name)
        from apache_beam.io.kafka import ReadFromKafka  # a cross-language transform: imported when used

        consumer = {"bootstrap.servers": self._endpoint.address, "group.id": CONSUMER_GROUP}
        records = pipeline | "ReadKafka" >> ReadFromKafka(consumer_config=consumer, topics=[self._endpoint.name])
        return records | "Values" >> beam.Values()


class WriteAnswers(beam.PTransform):
    """{"predictions", "dead_letter"} → the endpoint's two topics, one JSON record per message."""

    def __init__(self, endpoint: StreamEndpoint) -> None:
        super().__init__()
        self._endpoint = endpoint

    def expand(self, outputs: dict[str, beam.PCollection]) -> None:
        for name, records in outputs.items():
            topic = self._endpoint.topic(name)
            if self._endpoint.kind == PUBSUB:
                encoded = records | f"Encode{name}" >> beam.Map(_encoded)
                encoded | f"Publish{name}" >> beam.io.WriteToPubSub(topic=topic)
            else:
                from apache_beam.io.kafka import WriteToKafka

                keyed = records | f"Key{name}" >> beam.Map(lambda r: (str(r.get("id") or "").encode(), _encoded(r)))
                producer = {"bootstrap.servers": self._endpoint.address}
                keyed | f"Produce{name}" >> WriteToKafka(producer_config=producer, topic=topic)


def _encoded(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()
