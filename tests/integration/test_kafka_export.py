"""prism_kafka_export against a real Kafka 4.1 broker, and the round trip the restore makes: the exported
topics, passed to prism_kafka_topics, bring back a topic's config overrides and a deleted topic."""

from __future__ import annotations

import json
import secrets
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration


def overrides(admin: KafkaAdminClient, name: str) -> dict[str, str]:
    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name)], config_filter="modified"
    )
    return {
        key: str(entry["value"])
        for key, entry in described["topic"][name].items()
        if entry.get("config_source") == "DYNAMIC_TOPIC_CONFIG"
    }


def test_export_and_restore_round_trip(kafka_server: Any, runner: Any, tmp_path: Path) -> None:
    admin = KafkaAdminClient(bootstrap_servers=[kafka_server.bootstrap])
    topic, other, group = (f"export.{secrets.token_hex(4)}", f"export.{secrets.token_hex(4)}", "export-test")
    admin.create_topics(
        [
            NewTopic(topic, 3, 1, topic_configs={"retention.ms": "3600000", "cleanup.policy": "delete"}),
            NewTopic(other, 1, 1),
        ]
    )
    admin.wait_for_topics([topic, other])
    producer = KafkaProducer(bootstrap_servers=[kafka_server.bootstrap])
    for i in range(5):
        producer.send(topic, f"m{i}".encode(), partition=0)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=[kafka_server.bootstrap],
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10000,
    )
    assert len(list(islice(consumer, 5))) == 5
    consumer.commit()
    consumer.close()

    dest = tmp_path / "metadata.json"
    check = runner.run(
        "prism_kafka_export", {**kafka_server.connection_args(), "dest": str(dest)}, check=True
    )
    assert check.rc == 0 and not dest.exists(), check.output
    run = runner.run("prism_kafka_export", {**kafka_server.connection_args(), "dest": str(dest)})
    assert run.rc == 0 and not run.failed, run.output
    export = json.loads(dest.read_text())
    by_name = {t["name"]: t for t in export["topics"]}
    assert by_name[topic] == {
        "name": topic,
        "partitions": 3,
        "replication_factor": 1,
        "configs": {"cleanup.policy": "delete", "retention.ms": "3600000"},
    }
    assert not any(name.startswith("__") for name in by_name)
    # Partition 0 got the five messages; the consumer committed its position there.
    assert export["consumer_groups"][group][topic]["0"] == 5
    assert run.result["counted"]["topics"] == len(export["topics"])
    assert run.result["tool_version"].startswith("kafka-python ")

    # What the restore does: the exported declarations through prism_kafka_topics.
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "1000"})])
    admin.delete_topics([other])
    restore = runner.run(
        "prism_kafka_topics",
        {**kafka_server.connection_args(), "topics": export["topics"], "purge_configs": True},
    )
    assert restore.rc == 0 and not restore.failed, restore.output
    assert restore.result["created"] == [other]
    assert overrides(admin, topic) == {"cleanup.policy": "delete", "retention.ms": "3600000"}
    admin.delete_topics([topic, other])
    admin.close()
