# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reference dead-letter routing for the PRISM agents: consume an agent topic, hand each message to the
agent's handler, and send what the handler rejects to that agent's dead-letter topic before committing.

It lives next to the topics module (and not in an application package) because both share one contract
that the deploy owns: the topic names of files/kafka/topics.yml (orch.<agent>.<stream> -> orch.<agent>.dlq)
and the dead-letter headers below. The routing (``dlq_topic_for``, ``route``, ``dead_letter``) is pure and
unit-tested; ``DlqWorker`` adds the kafka-python consumer and producer and is tested against a real broker.

Delivery is at least once: a batch's offsets are committed only after every dead letter of the batch was
acknowledged by the broker (acks=all), so a crash in between re-delivers the messages, never loses them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

AGENT_TYPES = ("monitoring", "prediction", "control", "analysis")
AGENT_TOPIC_RE = re.compile(r"^orch\.(?P<agent>[a-z]+)\.(?P<stream>[a-z]+)$")
DLQ_STREAM = "dlq"
HEADER_TOPIC = "dlq.original.topic"
HEADER_PARTITION = "dlq.original.partition"
HEADER_OFFSET = "dlq.original.offset"
HEADER_ERROR = "dlq.error"
DLQ_HEADERS = (HEADER_TOPIC, HEADER_PARTITION, HEADER_OFFSET, HEADER_ERROR)
MAX_ERROR_BYTES = 2048

Headers = list[tuple[str, bytes]]


class Rejected(Exception):
    """Raised by a handler for a message it will never be able to process (bad payload, unknown task)."""


@dataclass(frozen=True)
class Message:
    """The parts of a consumed record that routing needs (kafka-python's ConsumerRecord has them all)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers


def dlq_topic_for(topic: str) -> str:
    """orch.<agent>.<stream> -> orch.<agent>.dlq for the four agent types; anything else is an error."""
    match = AGENT_TOPIC_RE.match(topic)
    if not match or match.group("agent") not in AGENT_TYPES:
        raise ValueError(
            f"{topic!r} is not an agent topic: expected orch.<agent>.<stream> with agent one of {', '.join(AGENT_TYPES)}"
        )
    if match.group("stream") == DLQ_STREAM:
        raise ValueError(f"{topic!r} is itself a dead-letter topic: its messages are not routed again")
    return f"orch.{match.group('agent')}.{DLQ_STREAM}"


def error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.encode()[:MAX_ERROR_BYTES].decode(errors="ignore")


def dead_letter(message: Message, exc: BaseException) -> DeadLetter:
    """The dead letter of ``message``: same key and value, its own headers (minus stale dlq.* ones) plus
    where it came from and why it was rejected."""
    kept = [(name, value) for name, value in message.headers if name not in DLQ_HEADERS]
    return DeadLetter(
        topic=dlq_topic_for(message.topic),
        key=message.key,
        value=message.value,
        headers=kept
        + [
            (HEADER_TOPIC, message.topic.encode()),
            (HEADER_PARTITION, str(message.partition).encode()),
            (HEADER_OFFSET, str(message.offset).encode()),
            (HEADER_ERROR, error_text(exc).encode()),
        ],
    )


def route(message: Message, handler: Callable[[Message], Any]) -> DeadLetter | None:
    """Run the handler; None when it accepted the message, the dead letter when it raised."""
    try:
        handler(message)
    except Exception as exc:  # any failure of the handler is a rejection of this message
        return dead_letter(message, exc)
    return None


def from_record(record: Any) -> Message:
    return Message(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        headers=list(record.headers or []),
    )


class DlqWorker:
    """Consume agent topics with ``handler``; dead letters go to the agent's DLQ, then offsets are committed.

    ``consumer`` is a kafka-python KafkaConsumer subscribed to agent topics with enable_auto_commit=False;
    ``producer`` a KafkaProducer with acks='all'.
    """

    def __init__(
        self, consumer: Any, producer: Any, handler: Callable[[Message], Any], send_timeout: float = 30
    ):
        self.consumer = consumer
        self.producer = producer
        self.handler = handler
        self.send_timeout = send_timeout

    def run_once(self, timeout_ms: int = 1000) -> dict[str, int]:
        """Process one poll's batch; return counts of handled and dead-lettered messages."""
        from kafka.structs import OffsetAndMetadata

        batch = self.consumer.poll(timeout_ms=timeout_ms)
        counts = {"handled": 0, "dead_lettered": 0}
        offsets = {}
        pending = []
        for partition, records in batch.items():
            for record in records:
                letter = route(from_record(record), self.handler)
                if letter is None:
                    counts["handled"] += 1
                else:
                    pending.append(
                        self.producer.send(
                            letter.topic, value=letter.value, key=letter.key, headers=letter.headers
                        )
                    )
                    counts["dead_lettered"] += 1
            if records:
                offsets[partition] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
        for future in pending:
            future.get(timeout=self.send_timeout)  # raises: nothing is committed, the batch is re-delivered
        if offsets:
            self.consumer.commit(offsets)
        return counts
