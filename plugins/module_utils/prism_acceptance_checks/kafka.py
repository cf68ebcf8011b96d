# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kafka check: produce (acks=all) and consume with the run's group on every agent topic, and dead letters
routed by the reference DlqWorker (prism_kafka_dlq)."""

from __future__ import annotations

import time
from typing import Any

from ansible.module_utils.prism_acceptance import expect
from ansible.module_utils.prism_acceptance_checks.stack import HEADER_REJECT, HEADER_RUN, KAFKA_WAIT_S, Stack
from ansible.module_utils.prism_kafka_dlq import AGENT_TYPES, DlqWorker, Rejected, dlq_topic_for


def agent_topics(declared: list[str]) -> list[str]:
    """The declared orch.<agent>.<stream> topics other than the dead-letter ones."""
    found = []
    for topic in declared:
        try:
            dlq_topic_for(topic)
        except ValueError:
            continue
        found.append(topic)
    return found


def check_kafka_operations(stack: Stack) -> str:
    stack.kafka_conf()  # NOT RUN HERE when Kafka is not deployed
    ns = stack.ns
    topics = agent_topics(stack.services.kafka_topics)
    expect(len(topics) >= len(AGENT_TYPES), f"declared agent topics: {topics}")
    wanted: dict[tuple[str, int, int], bytes] = {}
    for topic in topics:
        key = f"{ns.key_prefix}{topic}"
        partition, offset = stack.produce(topic, key, {"check": "kafka_operations", "topic": topic})
        wanted[(topic, partition, offset)] = key.encode()
    stack.consume_exact(wanted)

    # Dead letters, through the reference routing (prism_kafka_dlq.DlqWorker): one rejected message per
    # agent's tasks topic must arrive in that agent's DLQ with the dlq.* headers.
    tasks_topics = [f"orch.{agent}.tasks" for agent in AGENT_TYPES if f"orch.{agent}.tasks" in topics]
    dlqs = [dlq_topic_for(t) for t in tasks_topics]
    dlq_start = stack.end_offsets(dlqs)
    rejected: dict[tuple[str, int, int], bytes] = {}
    for topic in tasks_topics:
        reject_key = f"{ns.key_prefix}reject:{topic}"
        partition, offset = stack.produce(topic, reject_key, {"check": "dlq"}, reject=True)
        rejected[(topic, partition, offset)] = reject_key.encode()
    dead = route_rejected(stack, rejected)
    for (topic, partition, offset), letter_key in rejected.items():
        dlq = dlq_topic_for(topic)
        stack.produced[dlq] = stack.produced.get(dlq, 0) + 1
        match = [
            r
            for r in dead.get(dlq, [])
            if r.key == letter_key
            and dict(r.headers).get("dlq.original.topic") == topic.encode()
            and dict(r.headers).get("dlq.original.offset") == str(offset).encode()
            and dict(r.headers).get("dlq.original.partition") == str(partition).encode()
            and dict(r.headers).get("dlq.error", b"").startswith(b"Rejected")
        ]
        expect(
            len(match) == 1,
            f"the rejected message {topic}[{partition}]@{offset} is not in {dlq} ({len(match)})",
        )
    grown = stack.end_offsets(dlqs)
    expect(
        all(grown[d] > dlq_start[d] for d in dlqs),
        f"DLQ end offsets did not grow: {dlq_start} -> {grown}",
    )
    return (
        f"{len(wanted)} messages produced (acks=all) and consumed on {', '.join(topics)} by group {ns.group_id}; "
        f"{len(rejected)} rejected messages reached {', '.join(dlqs)} with dlq.* headers"
    )


def route_rejected(stack: Stack, rejected: dict[tuple[str, int, int], bytes]) -> dict[str, list[Any]]:
    """Run DlqWorker over the tasks partitions from the rejected offsets on; the handler rejects this run's
    marked messages and accepts (ignores) everything else. Returns the DLQ records seen since."""
    from kafka import TopicPartition

    run = stack.ns.run_id.encode()

    def handler(message: Any) -> None:
        headers = dict(message.headers)
        if headers.get(HEADER_RUN) == run and HEADER_REJECT in headers:
            raise Rejected("rejected on purpose by the PRISM acceptance suite")

    dlqs = sorted({dlq_topic_for(t) for t, _, _ in rejected})
    dlq_start = stack.end_offsets(dlqs)
    consumer = stack.consumer_at(list(rejected))
    try:
        worker = DlqWorker(consumer, stack.producer(), handler, send_timeout=KAFKA_WAIT_S)
        deadline = time.monotonic() + KAFKA_WAIT_S
        done = 0
        while time.monotonic() < deadline:
            worker.run_once(timeout_ms=1000)
            done = sum(1 for (t, p, o) in rejected if consumer.position(TopicPartition(t, p)) > o)
            if done == len(rejected):
                break
        expect(done == len(rejected), f"DlqWorker processed {done} of {len(rejected)} rejected messages")
    finally:
        consumer.close()
    # Read the dead letters back (their own reader, no group).
    return read_since(stack, dlq_start)


def read_since(stack: Stack, starts: dict[str, int]) -> dict[str, list[Any]]:
    """The last records (up to 50 per partition) of the topics in ``starts``, up to their current end:
    enough to find this run's dead letters, which were written moments ago."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(enable_auto_commit=False, **stack.kafka_conf())
    seen: dict[str, list[Any]] = {t: [] for t in starts}
    try:
        parts = [TopicPartition(t, p) for t in starts for p in sorted(consumer.partitions_for_topic(t) or [])]
        ends = consumer.end_offsets(parts)
        consumer.assign(parts)
        wanted_total = 0
        for tp in parts:
            back = max(0, ends[tp] - 50)
            consumer.seek(tp, back)
            wanted_total += ends[tp] - back
        deadline = time.monotonic() + KAFKA_WAIT_S
        count = 0
        while count < wanted_total and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    if record.offset < ends[tp]:
                        seen[tp.topic].append(record)
                        count += 1
    finally:
        consumer.close()
    return seen
