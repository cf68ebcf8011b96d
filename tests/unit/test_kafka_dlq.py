"""Dead-letter routing of the reference DLQ helper (pure parts; the worker is tested against a broker)."""

from __future__ import annotations

from typing import Any

import pytest
from ansible.module_utils.prism_kafka_dlq import (
    HEADER_ERROR,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_TOPIC,
    MAX_ERROR_BYTES,
    DlqWorker,
    Message,
    Rejected,
    dead_letter,
    dlq_topic_for,
    route,
)


def message(topic: str = "orch.control.tasks", **kw: Any) -> Message:
    return Message(
        topic=topic,
        partition=kw.get("partition", 2),
        offset=kw.get("offset", 41),
        key=b"k",
        value=b"v",
        headers=kw.get("headers", []),
    )


@pytest.mark.parametrize(
    ("topic", "dlq"),
    [
        ("orch.monitoring.tasks", "orch.monitoring.dlq"),
        ("orch.prediction.results", "orch.prediction.dlq"),
        ("orch.control.tasks", "orch.control.dlq"),
        ("orch.analysis.tasks", "orch.analysis.dlq"),
    ],
)
def test_each_agent_has_its_own_dlq(topic: str, dlq: str) -> None:
    assert dlq_topic_for(topic) == dlq


@pytest.mark.parametrize(
    "topic",
    [
        "orch.system.events",
        "orch.audit",
        "orch.monitoring.dlq",
        "other.monitoring.tasks",
        "orch.Monitoring.tasks",
    ],
)
def test_non_agent_topics_have_no_dlq(topic: str) -> None:
    with pytest.raises(ValueError, match=topic.replace(".", r"\.")):
        dlq_topic_for(topic)


def test_accepted_message_is_not_routed() -> None:
    seen: list[Message] = []
    assert route(message(), seen.append) is None
    assert seen == [message()]


def test_rejected_message_becomes_a_dead_letter_with_origin_and_error() -> None:
    def handler(_: Message) -> None:
        raise Rejected("unknown task type 'x'")

    letter = route(message(headers=[("trace", b"1")]), handler)
    assert letter is not None
    assert letter.topic == "orch.control.dlq" and letter.key == b"k" and letter.value == b"v"
    headers = dict(letter.headers)
    assert headers == {
        "trace": b"1",
        HEADER_TOPIC: b"orch.control.tasks",
        HEADER_PARTITION: b"2",
        HEADER_OFFSET: b"41",
        HEADER_ERROR: b"Rejected: unknown task type 'x'",
    }


def test_any_handler_exception_is_a_rejection_and_error_is_bounded() -> None:
    letter = dead_letter(message(), ValueError("x" * 10000))
    assert len(dict(letter.headers)[HEADER_ERROR]) <= MAX_ERROR_BYTES
    assert route(message(), lambda m: 1 / 0) is not None


def test_stale_dlq_headers_are_replaced() -> None:
    old = [(HEADER_TOPIC, b"orch.x.tasks"), (HEADER_ERROR, b"old")]
    headers = dead_letter(message(headers=old), Rejected("new")).headers
    assert [h for h in headers if h[0] == HEADER_TOPIC] == [(HEADER_TOPIC, b"orch.control.tasks")]
    assert [h for h in headers if h[0] == HEADER_ERROR] == [(HEADER_ERROR, b"Rejected: new")]


class Record:
    def __init__(self, topic: str, partition: int, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.value = topic, partition, offset, value
        self.key = b"k"
        self.headers: list[tuple[str, bytes]] = []


class FakeConsumer:
    def __init__(self, batch: dict) -> None:
        self.batch = batch
        self.commits: list[dict] = []

    def poll(self, timeout_ms: int) -> dict:
        return self.batch

    def commit(self, offsets: dict) -> None:
        self.commits.append(offsets)


class FakeFuture:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def get(self, timeout: float) -> None:
        if self.fail:
            raise TimeoutError("broker did not acknowledge")


class FakeProducer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple] = []
        self.fail = fail

    def send(self, topic: str, value: bytes, key: bytes, headers: list) -> FakeFuture:
        self.sent.append((topic, value))
        return FakeFuture(self.fail)


def test_worker_commits_after_the_dead_letters_are_acknowledged() -> None:
    tp = ("orch.monitoring.tasks", 0)
    batch = {tp: [Record(*tp, 5, b"ok"), Record(*tp, 6, b"bad")]}
    consumer, producer = FakeConsumer(batch), FakeProducer()

    def handler(m: Message) -> None:
        if m.value == b"bad":
            raise Rejected("bad")

    counts = DlqWorker(consumer, producer, handler).run_once()
    assert counts == {"handled": 1, "dead_lettered": 1}
    assert producer.sent == [("orch.monitoring.dlq", b"bad")]
    assert consumer.commits[0][tp].offset == 7


def test_worker_commits_nothing_when_a_dead_letter_is_not_acknowledged() -> None:
    tp = ("orch.monitoring.tasks", 0)
    consumer = FakeConsumer({tp: [Record(*tp, 6, b"bad")]})
    with pytest.raises(TimeoutError):
        DlqWorker(
            consumer, FakeProducer(fail=True), lambda m: (_ for _ in ()).throw(Rejected("x"))
        ).run_once()
    assert consumer.commits == []
