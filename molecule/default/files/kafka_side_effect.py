#!/usr/bin/env python3
"""The Kafka traffic of the Molecule side effect (side_effect.yml), through the stack's published listener.

Usage: kafka_side_effect.py BOOTSTRAP dlq TOPIC           produce one dead letter to TOPIC
       kafka_side_effect.py BOOTSTRAP lag GROUP TOPIC N   GROUP commits TOPIC's end, then N more arrive
       kafka_side_effect.py BOOTSTRAP catchup GROUP TOPIC GROUP commits TOPIC's end (lag 0)
Prints what it did as one JSON line; every produce is acknowledged by the broker (acks=all) or fails.
"""

from __future__ import annotations

import json
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

TIMEOUT_S = 30


def produce(bootstrap: str, topic: str, count: int, what: bytes) -> int:
    producer = KafkaProducer(bootstrap_servers=[bootstrap], acks="all", request_timeout_ms=TIMEOUT_S * 1000)
    try:
        for i in range(count):
            producer.send(topic, key=b"side-effect", value=what + b" %d" % i).get(timeout=TIMEOUT_S)
    finally:
        producer.close()
    return count


def commit_end(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(
        bootstrap_servers=[bootstrap],
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=TIMEOUT_S * 1000,
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise SystemExit(f"topic {topic} not found on {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = consumer.end_offsets(tps)
        consumer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in tps})
        return {tp.partition: ends[tp] for tp in tps}
    finally:
        consumer.close()


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    bootstrap, action, *args = argv[1:]
    if action == "dlq" and len(args) == 1:
        done = {"dlq": args[0], "produced": produce(bootstrap, args[0], 1, b"rejected by the side effect")}
    elif action == "lag" and len(args) == 3:
        group, topic, count = args[0], args[1], int(args[2])
        committed = commit_end(bootstrap, group, topic)
        done = {"group": group, "committed": committed, "produced": produce(bootstrap, topic, count, b"task")}
    elif action == "catchup" and len(args) == 2:
        done = {"group": args[0], "committed": commit_end(bootstrap, args[0], args[1])}
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(done))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
