"""Kafka (KRaft) as deployed by site.yml: container, exposure, the broker's own answers about its cluster,
settings and the 14 declared topics, and a restart that keeps the formatted storage."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from conftest import PREFIX, ROOT, inspect, run_playbook, secret, wait_kafka_serves_groups
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

KAFKA_PORT = 19092
NAME = f"{PREFIX}_kafka"
DECLARED = yaml.safe_load((ROOT / "files" / "kafka" / "topics.yml").read_text())


def expected_configs(topic: dict) -> dict[str, str]:
    merged = {**DECLARED["defaults"]["configs"], **topic.get("configs", {})}
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in merged.items()}


@pytest.fixture()
def admin():
    client = KafkaAdminClient(bootstrap_servers=[f"127.0.0.1:{KAFKA_PORT}"], request_timeout_ms=20000)
    yield client
    client.close()


def test_container_is_healthy_and_hardened(host):
    c = inspect(host, NAME)
    assert c["State"]["Health"]["Status"] == "healthy"
    hc = c["HostConfig"]
    assert "no-new-privileges:true" in hc["SecurityOpt"]
    assert hc["CapDrop"] == ["ALL"] and not hc.get("CapAdd")
    assert hc["ReadonlyRootfs"] is True
    assert hc["Privileged"] is False
    assert c["Config"]["User"] == "1000:1000"
    assert hc["Memory"] > 0 and hc["MemorySwap"] == hc["Memory"]
    assert hc["PidsLimit"] and hc["PidsLimit"] > 0
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"
    assert c["Config"]["Labels"]["org.prism.image.source"] in {"registry", "archive", "build"}
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts["/var/lib/kafka/data"]["Type"] == "volume"
    assert mounts["/var/lib/kafka/data"]["Name"] == f"{PREFIX}_kafka_data"
    # the heap comes from the inventory, the health probe asks the broker, not the port
    env = dict(e.split("=", 1) for e in c["Config"]["Env"])
    assert env["KAFKA_HEAP_OPTS"] == "-Xms512m -Xmx512m"
    assert "kafka-broker-api-versions.sh" in " ".join(c["Config"]["Healthcheck"]["Test"])


def test_port_is_bound_to_loopback_only(host):
    bindings = inspect(host, NAME)["HostConfig"]["PortBindings"]
    assert list(bindings) == ["9092/tcp"]  # the internal and controller listeners are not published
    assert [(b["HostIp"], b["HostPort"]) for b in bindings["9092/tcp"]] == [("127.0.0.1", str(KAFKA_PORT))]
    assert host.socket(f"tcp://127.0.0.1:{KAFKA_PORT}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{KAFKA_PORT}").is_listening


def test_kraft_cluster_with_the_persisted_id(admin):
    cluster = admin.describe_cluster()
    assert [b["broker_id"] for b in cluster["brokers"]] == [1]
    assert cluster["cluster_id"] == secret("kafka_cluster_id") + "A"
    # KRaft: the metadata quorum answers with node 1 as leader and only voter; no ZooKeeper anywhere.
    (partition,) = admin.describe_metadata_quorum()["topics"][0]["partitions"]
    assert partition["leader_id"] == 1
    assert [v["replica_id"] for v in partition["current_voters"]] == [1]


def test_broker_settings(admin):
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")], config_filter="all")
    broker = {k: v["value"] for k, v in configs["broker"]["1"].items()}
    assert broker["auto.create.topics.enable"] == "false"
    assert broker["offsets.topic.replication.factor"] == "1"
    assert broker["transaction.state.log.replication.factor"] == "1"
    assert broker["min.insync.replicas"] == "1"
    assert broker["process.roles"] == "broker,controller"
    assert "zookeeper.connect" not in broker or not broker["zookeeper.connect"]


def test_the_fourteen_topics_with_their_configs(admin):
    names = [t["name"] for t in DECLARED["topics"]]
    assert len(names) == 14
    described = {t["name"]: t for t in admin.describe_topics(names)}
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
    configs = admin.describe_configs(resources)["topic"]
    for topic in DECLARED["topics"]:
        name = topic["name"]
        assert described[name]["error_code"] == 0, name
        assert len(described[name]["partitions"]) == topic["partitions"], name
        overrides = {
            k: v["value"] for k, v in configs[name].items() if v["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        }
        assert overrides == expected_configs(topic), name


def test_topics_are_not_auto_created(admin):
    producer = KafkaProducer(bootstrap_servers=[f"127.0.0.1:{KAFKA_PORT}"], max_block_ms=3000)
    try:
        with pytest.raises(Exception):  # noqa: B017 - kafka-python raises a timeout for the unknown topic
            producer.send("orch.typo.tasks", b"x").get(timeout=5)
    finally:
        producer.close(timeout=5)
    assert "orch.typo.tasks" not in admin.list_topics()


def test_containers_on_the_network_reach_kafka_19092(host):
    c = inspect(host, NAME)
    network = next(iter(c["NetworkSettings"]["Networks"]))
    out = host.check_output(
        "docker run --rm --network %s -e KAFKA_HEAP_OPTS=-Xmx64m %s kafka-broker-api-versions.sh "
        "--bootstrap-server kafka:19092",
        network,
        c["Config"]["Image"],
    )
    assert "kafka:19092 (id: 1" in out


def test_restart_keeps_the_storage_and_never_reformats(host, admin):
    before = admin.describe_cluster()["cluster_id"]
    groups = frozenset(g["group_id"] for g in admin.list_groups())
    host.check_output("docker restart %s", NAME)
    deadline = time.monotonic() + 120
    while (
        inspect(host, NAME)["State"].get("Health", {}).get("Status") != "healthy"
        and time.monotonic() < deadline
    ):
        time.sleep(2)
    assert inspect(host, NAME)["State"]["Health"]["Status"] == "healthy"
    started = inspect(host, NAME)["State"]["StartedAt"]
    logs = host.run("docker logs --since %s %s", started, NAME)
    assert "Launching Kafka" in logs.stdout + logs.stderr
    assert "Formatting" not in logs.stdout + logs.stderr
    served = wait_kafka_serves_groups(KAFKA_PORT, groups)
    print(f"{NAME} restarted: serves its {len(groups)} groups again {served:.1f} s after it was healthy")
    fresh = KafkaAdminClient(bootstrap_servers=[f"127.0.0.1:{KAFKA_PORT}"])
    try:
        assert fresh.describe_cluster()["cluster_id"] == before
        assert {t["name"] for t in DECLARED["topics"]} <= set(fresh.list_topics())
    finally:
        fresh.close()


def test_recreate_leaves_no_anonymous_volume_behind(host, admin):
    """The image's VOLUME paths that no mount covers get anonymous volumes; a recreate (a changed setting)
    removes the old container's (roles/prism/tasks/containers.yml, keep_volumes: false). The data volume, and
    with it the cluster id, stays."""
    before = inspect(host, NAME)
    cluster = admin.describe_cluster()["cluster_id"]
    groups = frozenset(g["group_id"] for g in admin.list_groups())
    anonymous = {
        m["Name"] for m in before["Mounts"] if m["Type"] == "volume" and m["Name"] != f"{PREFIX}_kafka_data"
    }
    assert anonymous, "the kafka image declares VOLUME paths besides the data directory"
    changed = run_playbook("-e", json.dumps({"kafka_heap_opts": "-Xms500m -Xmx500m"}))
    try:
        assert changed.rc == 0, changed.output[-3000:]
        after = inspect(host, NAME)
        assert after["Id"] != before["Id"], "a changed KAFKA_HEAP_OPTS recreates the container"
        left = host.run("docker volume ls -q").stdout.split()
        assert not anonymous & set(left), f"left behind: {anonymous & set(left)}"
        data = [m["Name"] for m in after["Mounts"] if m["Destination"] == "/var/lib/kafka/data"]
        assert data == [f"{PREFIX}_kafka_data"]
    finally:
        restored = run_playbook()
        assert restored.rc == 0, restored.output[-3000:]
    served = wait_kafka_serves_groups(KAFKA_PORT, groups)
    print(f"{NAME} recreated: serves its {len(groups)} groups again {served:.1f} s after the playbook")
    fresh = KafkaAdminClient(bootstrap_servers=[f"127.0.0.1:{KAFKA_PORT}"])
    try:
        assert fresh.describe_cluster()["cluster_id"] == cluster
    finally:
        fresh.close()
