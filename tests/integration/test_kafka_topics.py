"""prism_kafka_topics and the DLQ helper against a real Kafka 4.1 broker (the project-built image)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.prism_kafka_dlq import (
    HEADER_ERROR,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_TOPIC,
    DlqWorker,
    Message,
    Rejected,
)
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.structs import TopicPartition

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
TOPICS_FILE = REPO_ROOT / "files" / "kafka" / "topics.yml"
DECLARED = yaml.safe_load(TOPICS_FILE.read_text())
SHIPPED = sorted(t["name"] for t in DECLARED["topics"])
AGENTS = ("monitoring", "prediction", "control", "analysis")


# --- helpers ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(kafka_server: Any):
    client = KafkaAdminClient(bootstrap_servers=[kafka_server.bootstrap])
    yield client
    client.close()


def topics_args(kafka_server: Any, topics: list[dict], **extra: Any) -> dict[str, Any]:
    return {**kafka_server.connection_args(), "topics": topics, **extra}


def run_ok(runner: Any, args: dict[str, Any], **kw: Any) -> dict[str, Any]:
    run = runner.run("prism_kafka_topics", args, **kw)
    assert run.rc == 0 and not run.failed, run.result.get("msg", run.output)
    return run.result


def run_fail(runner: Any, args: dict[str, Any], **kw: Any) -> str:
    run = runner.run("prism_kafka_topics", args, **kw)
    assert run.rc != 0 and run.failed, run.output
    return str(run.result["msg"])


def overrides(admin: KafkaAdminClient, name: str) -> dict[str, str]:
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])["topic"][name]
    return {k: v["value"] for k, v in described.items() if v["config_source"] == "DYNAMIC_TOPIC_CONFIG"}


def partitions(admin: KafkaAdminClient, name: str) -> int:
    (topic,) = admin.describe_topics([name])
    assert topic["error_code"] == 0, topic
    return len(topic["partitions"])


def unique(prefix: str = "t") -> str:
    return f"test.{prefix}.{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def shipped(session_runner: Any, kafka_server: Any) -> dict[str, Any]:
    """The 14 declared topics, created by the module once; the first run's result and its duration."""
    started = time.monotonic()
    run = session_runner.run(
        "prism_kafka_topics",
        topics_args(kafka_server, DECLARED["topics"], defaults=DECLARED["defaults"], purge_configs=True),
    )
    seconds = time.monotonic() - started
    assert run.rc == 0 and not run.failed, run.result.get("msg", run.output)
    return {"result": run.result, "seconds": seconds}


# --- the shipped topics -----------------------------------------------------------------------------------


def test_shipped_topics_created_then_rerun_changes_nothing(runner, kafka_server, shipped, admin) -> None:
    first = shipped["result"]
    assert first["changed"] is True
    assert sorted(first["created"]) == SHIPPED and len(SHIPPED) == 14
    print(f"\ncreated the 14 topics in {shipped['seconds']:.1f} s (ansible-playbook run)")
    assert set(SHIPPED) <= set(admin.list_topics())
    second = run_ok(
        runner,
        topics_args(kafka_server, DECLARED["topics"], defaults=DECLARED["defaults"], purge_configs=True),
    )
    assert second["changed"] is False
    assert second["created"] == [] and second["drift"] == [] and second["configs_changed"] == {}


def test_shipped_topics_have_declared_partitions_and_configs(shipped, admin) -> None:
    defaults = DECLARED["defaults"]["configs"]
    for topic in DECLARED["topics"]:
        assert partitions(admin, topic["name"]) == topic["partitions"], topic["name"]
        expected = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in {**defaults, **topic["configs"]}.items()
        }
        assert overrides(admin, topic["name"]) == expected, topic["name"]
    for agent in AGENTS:
        assert {f"orch.{agent}.tasks", f"orch.{agent}.results", f"orch.{agent}.dlq"} <= set(SHIPPED)


def test_check_mode_on_converged_topics_reports_nothing(runner, kafka_server, shipped) -> None:
    result = run_ok(
        runner,
        topics_args(kafka_server, DECLARED["topics"], defaults=DECLARED["defaults"], purge_configs=True),
        check=True,
        diff=True,
    )
    assert result["changed"] is False


# --- convergence ------------------------------------------------------------------------------------------


def test_check_mode_changes_nothing(runner, kafka_server, admin) -> None:
    existing = unique("check")
    run_ok(
        runner,
        topics_args(
            kafka_server, [{"name": existing, "partitions": 1, "configs": {"retention.ms": 1000000}}]
        ),
    )
    before_topics = sorted(admin.list_topics())
    new = unique("checknew")
    plan = [
        {"name": existing, "partitions": 3, "configs": {"retention.ms": 2000000}},
        {"name": new, "partitions": 2, "replication_factor": 1},
    ]
    result = run_ok(runner, topics_args(kafka_server, plan), check=True, diff=True)
    assert result["changed"] is True
    assert result["created"] == [new]
    assert result["partitions_added"] == {existing: {"before": 1, "after": 3}}
    assert result["configs_changed"][existing]["set"] == {"retention.ms": "2000000"}
    assert sorted(admin.list_topics()) == before_topics
    assert partitions(admin, existing) == 1
    assert overrides(admin, existing) == {"retention.ms": "1000000"}


def test_check_mode_validates_with_the_broker(runner, kafka_server, admin) -> None:
    name = unique("badconf")
    msg = run_fail(
        runner, topics_args(kafka_server, [{"name": name, "configs": {"no.such.config": 1}}]), check=True
    )
    assert name in msg
    assert name not in admin.list_topics()


def test_grow_partitions(runner, kafka_server, admin) -> None:
    name = unique("grow")
    run_ok(runner, topics_args(kafka_server, [{"name": name, "partitions": 2}]))
    result = run_ok(runner, topics_args(kafka_server, [{"name": name, "partitions": 5}]), diff=True)
    assert result["changed"] is True
    assert result["partitions_added"] == {name: {"before": 2, "after": 5}}
    assert result["drift"] == [name]
    assert result["diff"]["before"][name]["partitions"] == 2
    assert result["diff"]["after"][name]["partitions"] == 5
    assert partitions(admin, name) == 5
    assert run_ok(runner, topics_args(kafka_server, [{"name": name, "partitions": 5}]))["changed"] is False


def test_change_config_incrementally_and_purge(runner, kafka_server, admin) -> None:
    name = unique("conf")
    run_ok(
        runner,
        topics_args(
            kafka_server, [{"name": name, "configs": {"retention.ms": 1000, "cleanup.policy": "delete"}}]
        ),
    )
    # an override set behind the module's back
    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name, {"segment.ms": "3600000"})], incremental=True
    )
    changed = run_ok(
        runner,
        topics_args(
            kafka_server, [{"name": name, "configs": {"retention.ms": 2000, "cleanup.policy": "delete"}}]
        ),
    )
    assert changed["changed"] is True
    assert changed["configs_changed"][name] == {
        "set": {"retention.ms": "2000"},
        "deleted": [],
        "before": {"retention.ms": "1000"},
    }
    # incremental: the undeclared override survives without purge_configs, and is reported
    assert overrides(admin, name) == {
        "retention.ms": "2000",
        "cleanup.policy": "delete",
        "segment.ms": "3600000",
    }
    assert changed["unmanaged_configs"] == {name: ["segment.ms"]}
    purged = run_ok(
        runner,
        topics_args(
            kafka_server,
            [{"name": name, "configs": {"retention.ms": 2000, "cleanup.policy": "delete"}}],
            purge_configs=True,
        ),
    )
    assert purged["changed"] is True
    assert purged["configs_changed"][name]["deleted"] == ["segment.ms"]
    assert overrides(admin, name) == {"retention.ms": "2000", "cleanup.policy": "delete"}


def test_shrink_refused_topic_untouched(runner, kafka_server, admin) -> None:
    name = unique("shrink")
    run_ok(
        runner,
        topics_args(kafka_server, [{"name": name, "partitions": 4, "configs": {"retention.ms": 1000}}]),
    )
    msg = run_fail(
        runner,
        topics_args(kafka_server, [{"name": name, "partitions": 2, "configs": {"retention.ms": 5000}}]),
    )
    assert "refused" in msg.lower() and name in msg and "cannot remove partitions" in msg
    assert partitions(admin, name) == 4
    assert overrides(admin, name) == {
        "retention.ms": "1000"
    }  # the config change in the same run was not made


def test_replication_factor_change_refused(runner, kafka_server, admin) -> None:
    name = unique("rf")
    run_ok(runner, topics_args(kafka_server, [{"name": name, "partitions": 1, "replication_factor": 1}]))
    msg = run_fail(
        runner, topics_args(kafka_server, [{"name": name, "partitions": 1, "replication_factor": 3}])
    )
    assert "replication_factor 1 -> 3 refused" in msg and "reassign" in msg.lower()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orch.bad/name", "only ASCII letters"),
        ("orch bad", "only ASCII letters"),
        ("x" * 250, "maximum is 249"),
        (".", "reserved"),
        ("..", "reserved"),
        ("__consumer_offsets", "internal topics"),
    ],
)
def test_invalid_names_refused_before_any_call(runner, name, expected) -> None:
    # Nothing listens on port 1: the error must come from validation, before any connection.
    msg = run_fail(
        runner, {"bootstrap_servers": ["127.0.0.1:1"], "topics": [{"name": "orch.fine"}, {"name": name}]}
    )
    assert expected in msg and "nothing was changed" in msg


def test_249_characters_is_fine(runner, kafka_server, admin) -> None:
    name = "t" * 249
    run_ok(runner, topics_args(kafka_server, [{"name": name, "partitions": 1}]))
    assert name in admin.list_topics()


def test_absent_deletes_only_marked_topics(runner, kafka_server, admin) -> None:
    keep, drop = unique("keep"), unique("drop")
    run_ok(runner, topics_args(kafka_server, [{"name": keep}, {"name": drop}]))
    internal = {t for t in admin.list_topics() if t.startswith("__")}
    result = run_ok(
        runner, topics_args(kafka_server, [{"name": keep}, {"name": drop, "state": "absent"}]), diff=True
    )
    assert result["deleted"] == [drop]
    assert result["diff"]["after"][drop] is None
    deadline = time.monotonic() + 30
    while drop in admin.list_topics() and time.monotonic() < deadline:
        time.sleep(0.5)
    topics = set(admin.list_topics())
    assert keep in topics and drop not in topics
    assert internal <= topics
    again = run_ok(runner, topics_args(kafka_server, [{"name": keep}, {"name": drop, "state": "absent"}]))
    assert again["changed"] is False and again["deleted"] == []


# --- messages ---------------------------------------------------------------------------------------------


def test_round_trip_with_acks_all_on_every_topic(kafka_server, shipped) -> None:
    producer = KafkaProducer(bootstrap_servers=[kafka_server.bootstrap], acks="all", retries=3)
    token = secrets.token_hex(6).encode()
    sent = {}
    try:
        for topic in SHIPPED:
            meta = producer.send(topic, key=b"task-1", value=b"round-trip-" + token).get(timeout=30)
            sent[topic] = (meta.partition, meta.offset)
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=[kafka_server.bootstrap], enable_auto_commit=False)
    try:
        for topic, (partition, offset) in sent.items():
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            records = consumer.poll(timeout_ms=10000).get(tp, [])
            assert records and records[0].value == b"round-trip-" + token, topic
            assert records[0].key == b"task-1"
    finally:
        consumer.close()


def test_rejected_message_lands_on_the_agents_dlq(kafka_server, shipped) -> None:
    token = secrets.token_hex(6)
    good, bad = f"good-{token}".encode(), f"bad-{token}".encode()
    producer = KafkaProducer(bootstrap_servers=[kafka_server.bootstrap], acks="all")
    try:
        producer.send("orch.monitoring.tasks", key=b"t-good", value=good).get(timeout=30)
        bad_meta = producer.send(
            "orch.monitoring.tasks", key=b"t-bad", value=bad, headers=[("trace", b"abc")]
        ).get(timeout=30)
    finally:
        producer.flush()

    handled: list[bytes] = []

    def handler(message: Message) -> None:
        if message.value == bad:
            raise Rejected("payload is not a task")
        handled.append(message.value or b"")

    group = f"test-dlq-{token}"
    consumer = KafkaConsumer(
        "orch.monitoring.tasks",
        bootstrap_servers=[kafka_server.bootstrap],
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    dlq_producer = KafkaProducer(bootstrap_servers=[kafka_server.bootstrap], acks="all")
    worker = DlqWorker(consumer, dlq_producer, handler)
    try:
        deadline = time.monotonic() + 60
        while good not in handled and time.monotonic() < deadline:
            worker.run_once(timeout_ms=1000)
        assert good in handled
        # committed after the batch: the group's position is past the rejected message
        committed = consumer.committed(TopicPartition("orch.monitoring.tasks", bad_meta.partition))
        assert committed is not None and committed > bad_meta.offset
    finally:
        consumer.close()
        dlq_producer.close()
        producer.close()

    reader = KafkaConsumer(
        "orch.monitoring.dlq",
        bootstrap_servers=[kafka_server.bootstrap],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10000,
    )
    try:
        letters = [r for r in reader if r.value == bad]
    finally:
        reader.close()
    assert len(letters) == 1
    headers = dict(letters[0].headers)
    assert letters[0].key == b"t-bad"
    assert headers[HEADER_TOPIC] == b"orch.monitoring.tasks"
    assert headers[HEADER_PARTITION] == str(bad_meta.partition).encode()
    assert headers[HEADER_OFFSET] == str(bad_meta.offset).encode()
    assert headers[HEADER_ERROR] == b"Rejected: payload is not a task"
    assert headers["trace"] == b"abc"
