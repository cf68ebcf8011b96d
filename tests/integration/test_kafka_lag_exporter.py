"""The stack's Kafka exporter (files/images/kafka_exporter/prism_kafka_exporter.py) against a real broker: a
group that falls behind shows its lag under kafka_exporter's names, and a deleted group disappears at the
next scrape. The exporter's image runs in Molecule default, scraped by Prometheus."""

from __future__ import annotations

import importlib.util
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import KafkaServer, wait_kafka_ready

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).resolve().parents[2] / "files/images/kafka_exporter/prism_kafka_exporter.py"
TOPIC = "orch.lagtest.tasks"
GROUP = "prism-lagtest"


def load_exporter() -> Any:
    spec = importlib.util.spec_from_file_location("prism_kafka_exporter", SOURCE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def scrape(exporter: Any, collector: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One scrape through prometheus_client's text exposition, parsed back: what Prometheus would store."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def produce(server: KafkaServer, count: int, topic: str = TOPIC) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=[server.bootstrap], acks="all")
    try:
        for i in range(count):
            producer.send(topic, value=f"task-{i}".encode(), partition=0)
        producer.flush(timeout=20)
    finally:
        producer.close()


def commit(server: KafkaServer, group: str, topic: str, offset: int) -> None:
    """The group's committed offset on partition 0, as a consumer that stopped there leaves it."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=[server.bootstrap], group_id=group, enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offset, "", -1)})
    finally:
        consumer.close()


def test_a_group_that_falls_behind_shows_its_lag_and_a_deleted_group_disappears(
    kafka_server: KafkaServer,
) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    exporter = load_exporter()
    admin = KafkaAdminClient(bootstrap_servers=[kafka_server.bootstrap], request_timeout_ms=20000)
    admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)], wait_for_metadata=True)
    produce(kafka_server, 10)
    commit(kafka_server, GROUP, TOPIC, 4)
    collector = exporter.ClusterCollector([kafka_server.bootstrap], 20000)
    part0 = (("consumergroup", GROUP), ("partition", "0"), ("topic", TOPIC))

    before = scrape(exporter, collector)
    print(f"after 10 produced, 4 committed: {before[('kafka_consumergroup_lag', part0)]:.0f} behind")
    assert before[("kafka_brokers", ())] == 1
    assert before[("kafka_topic_partitions", (("topic", TOPIC),))] == 2
    assert before[("kafka_topic_partition_current_offset", (("partition", "0"), ("topic", TOPIC)))] == 10
    assert before[("kafka_topic_partition_oldest_offset", (("partition", "0"), ("topic", TOPIC)))] == 0
    assert before[("kafka_consumergroup_current_offset", part0)] == 4
    assert before[("kafka_consumergroup_lag", part0)] == 6

    produce(kafka_server, 5)  # the group stops; messages keep arriving
    behind = scrape(exporter, collector)
    print(f"5 more produced: {behind[('kafka_consumergroup_lag', part0)]:.0f} behind")
    assert behind[("kafka_consumergroup_lag", part0)] == 11
    assert behind[("kafka_consumergroup_lag_sum", (("consumergroup", GROUP), ("topic", TOPIC)))] == 11

    admin.delete_groups([GROUP])
    after = scrape(exporter, collector)
    left = [key for key in after if ("consumergroup", GROUP) in key[1]]
    print(f"group deleted: {len(left)} series of it left")
    assert left == []
    assert after[("kafka_topic_partition_current_offset", (("partition", "0"), ("topic", TOPIC)))] == 15
    admin.close()


def test_a_cluster_that_does_not_answer_fails_the_scrape(caplog: pytest.LogCaptureFixture) -> None:
    from kafka.errors import KafkaTimeoutError

    exporter = load_exporter()
    collector = exporter.ClusterCollector(["127.0.0.1:1"], 2000)
    with caplog.at_level(logging.INFO, logger="prism_kafka_exporter"), pytest.raises(KafkaTimeoutError):
        scrape(exporter, collector)
    # One line that names the cluster and the reason; the traceback only at debug.
    (record,) = [r for r in caplog.records if r.name == "prism_kafka_exporter"]
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert record.getMessage().startswith("reading the cluster at 127.0.0.1:1 failed: KafkaTimeoutError: ")


def test_a_stopped_broker_fails_the_scrape_in_time_and_a_started_one_is_read_again(
    kafka_server: KafkaServer,
) -> None:
    """The side effect in Molecule stops the broker container, then starts it: the scrape must fail within
    Prometheus's scrape timeout (10 s) while it is down, and the first scrape once it is back (metadata and
    group coordinator answering) must read it, with the offsets and the lag it had. Its own topic and group,
    so it runs alone too. Last in the module: it restarts the module's broker."""
    from kafka.admin import KafkaAdminClient, NewTopic

    topic, group = "orch.lagtest.restart", "prism-lagtest-restart"
    admin = KafkaAdminClient(bootstrap_servers=[kafka_server.bootstrap], request_timeout_ms=20000)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)], wait_for_metadata=True)
    admin.close()
    produce(kafka_server, 7, topic)
    commit(kafka_server, group, topic, 3)
    exporter = load_exporter()
    collector = exporter.ClusterCollector([kafka_server.bootstrap], 5000)
    offset = ("kafka_topic_partition_current_offset", (("partition", "0"), ("topic", topic)))
    lag = ("kafka_consumergroup_lag", (("consumergroup", group), ("partition", "0"), ("topic", topic)))
    before = scrape(exporter, collector)
    assert before[("kafka_brokers", ())] == 1
    assert (before[offset], before[lag]) == (7, 4)

    kafka_server.container.stop(timeout=30)
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 (kafka-python raises a bootstrap timeout)
        scrape(exporter, collector)
    failed_in = time.monotonic() - started
    print(f"broker stopped: the scrape failed after {failed_in:.1f} s")
    assert failed_in < 10, "a scrape of a stopped broker must fail within Prometheus's scrape timeout (10 s)"

    kafka_server.container.start()
    started = time.monotonic()
    wait_kafka_ready(kafka_server.container, kafka_server, groups=frozenset({group}))
    after = scrape(exporter, collector)
    print(
        f"broker started, ready after {time.monotonic() - started:.1f} s: brokers {after[('kafka_brokers', ())]:.0f},"
        f" {topic}/0 at {after[offset]:.0f}, {group} {after[lag]:.0f} behind"
    )
    assert after[("kafka_brokers", ())] == 1
    assert (after[offset], after[lag]) == (before[offset], before[lag])
