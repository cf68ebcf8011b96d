"""The layout of an inventory of several hosts, as site.yml's preflight checks it and the roles render it:
inventories/cluster (three plant hosts, one KRaft cluster) with its hosts made this machine (connection local),
run through tests/unit/playbooks/layout.yml. A layout that cannot work is refused by the preflight, naming the
input and the fix, before anything is written; a good one renders each node's quorum, listeners and peer ports.
The dev inventory (one host) still renders the single-node layout."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from layout_inventory import ADDRESS, HOSTS, ROOT, cluster_inventory, rendered, run


def refused(tmp_path: Path, hosts: dict[str, Any], group_vars: dict[str, Any], *fragments: str) -> str:
    proc, out = run(tmp_path, hosts, group_vars)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    assert not list(out.iterdir()), "a refused layout must stop before anything is written"
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in the refusal:\n{text[-3000:]}"
    return text


def test_the_cluster_inventory_renders_one_quorum_over_the_hosts_addresses(tmp_path: Path) -> None:
    proc, out = run(tmp_path, *cluster_inventory())
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    nodes = rendered(out)
    assert sorted(nodes) == HOSTS
    voters = [f"{i}@{ADDRESS[h]}:9093" for i, h in enumerate(HOSTS, start=1)]
    for i, host in enumerate(HOSTS, start=1):
        node, address = nodes[host], ADDRESS[host]
        assert node["voters"] == voters
        assert node["roles"] == ["broker", "controller"]
        env = node["env"]
        assert env["KAFKA_NODE_ID"] == str(i)
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == ",".join(voters)
        # The alias kafka is per host: nothing crosses hosts through it, and no container IP is advertised.
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"INTERNAL://{address}:19092,EXTERNAL://{address}:9092"
        assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"
        assert sorted(node["published"]) == sorted(
            [f"{address}:{port}:{port}/tcp" for port in (9092, 19092, 9093, 9404)]
        )
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3" and env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert f"id: {i} " in node["health"]
        assert node["topic_defaults"]["replication_factor"] == 3
        assert node["topic_defaults"]["configs"]["min.insync.replicas"] == 2
        assert node["topic_defaults"]["configs"]["unclean.leader.election.enable"] is False
    # The topics are the cluster's: one broker seeds them.
    assert [h for h in HOSTS if nodes[h]["seeds"]] == HOSTS[:1]
    # On several hosts every target is scraped at its host's address, labelled with the host's name: the
    # exporters of every host, and the services that run once (on prism_primary). Only the peer ports are
    # published on the host address; the rest stays on loopback.
    jobs = {j["job"]: j for j in nodes[HOSTS[0]]["scrape"]}
    for job, port in {"node": 9100, "cadvisor": 8080, "kafka_jmx": 9404, "alertmanager": 9095}.items():
        assert jobs[job]["targets"] == []
        assert jobs[job]["host_targets"] == [
            {"targets": [f"{ADDRESS[h]}:{port}"], "labels": {"host": h}} for h in HOSTS
        ]
    assert jobs["prometheus"]["host_targets"] == [
        {"targets": [f"{ADDRESS[h]}:9090"], "labels": {"host": h}} for h in HOSTS[:2]
    ]
    for job, port in {"postgres": 9187, "redis": 9121, "kafka": 9308, "weaviate": 2112}.items():
        assert jobs[job] == {
            "job": job,
            "targets": [],
            "host_targets": [{"targets": [f"{ADDRESS[HOSTS[0]]}:{port}"], "labels": {"host": HOSTS[0]}}],
        }
    peer = {
        # Kafka (EXTERNAL, INTERNAL, CONTROLLER, JMX), node_exporter, cAdvisor, Alertmanager's API and gossip
        "every": [
            (9092, "tcp"),
            (19092, "tcp"),
            (9093, "tcp"),
            (9404, "tcp"),
            (9100, "tcp"),
            (8080, "tcp"),
            (9095, "tcp"),
            (9094, "tcp"),
            (9094, "udp"),
        ],
        "prometheus": [(9090, "tcp")],
        "primary": [(2112, "tcp"), (9187, "tcp"), (9121, "tcp"), (9308, "tcp")],
    }
    for host in HOSTS:
        wanted = (
            peer["every"]
            + (peer["prometheus"] if host in HOSTS[:2] else [])
            + (peer["primary"] if host == HOSTS[0] else [])
        )
        on_host_address = [p for p in nodes[host]["all_published"] if p.startswith(ADDRESS[host] + ":")]
        assert sorted(on_host_address) == sorted(f"{ADDRESS[host]}:{p}:{p}/{proto}" for p, proto in wanted)
        assert all(
            p.startswith("127.0.0.1:") for p in set(nodes[host]["all_published"]) - set(on_host_address)
        )


def test_monitoring_runs_as_two_prometheus_replicas_and_one_alertmanager_cluster(tmp_path: Path) -> None:
    proc, out = run(tmp_path, *cluster_inventory())
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    nodes = rendered(out)
    alertmanagers = [f"{ADDRESS[h]}:9095" for h in HOSTS]
    for host in HOSTS[:2]:
        config = yaml.safe_load(nodes[host]["prometheus_yml"])
        assert config["global"]["external_labels"] == {
            "prism_stack": "prism",
            "environment": "cluster",
            "replica": host,
        }
        assert config["alerting"] == {
            "alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}],
            "alert_relabel_configs": [{"action": "labeldrop", "regex": "replica"}],
        }
        # The same jobs and targets on both replicas: each scrapes every host.
        assert config["scrape_configs"] == yaml.safe_load(nodes[HOSTS[0]]["prometheus_yml"])["scrape_configs"]
    assert nodes[HOSTS[2]]["prometheus_yml"] is None
    for host in HOSTS:
        others = [f"--cluster.peer={ADDRESS[h]}:9094" for h in HOSTS if h != host]
        assert nodes[host]["alertmanager_command"] == [
            "--config.file=/etc/alertmanager/alertmanager.yml",
            "--storage.path=/alertmanager",
            "--cluster.listen-address=0.0.0.0:9094",
            f"--cluster.advertise-address={ADDRESS[host]}:9094",
            *others,
            "--web.listen-address=:9093",
            "--web.listen-address=:9095",
        ]


def test_separate_controllers_are_rendered_as_their_own_nodes(tmp_path: Path) -> None:
    hosts, group_vars = cluster_inventory()
    members = hosts["all"]["children"]["docker_hosts"]["hosts"]
    for n, name in enumerate(["prism-d.plant.internal", "prism-e.plant.internal"], start=4):
        members[name] = {"prism_host_address": f"10.20.0.{10 + n}", "kafka_node_id": n}
    children = hosts["all"]["children"]
    children["kafka_controllers"] = {"hosts": {h: None for h in HOSTS}}
    children["kafka_brokers"] = {
        "hosts": {h: None for h in [HOSTS[0], "prism-d.plant.internal", "prism-e.plant.internal"]}
    }
    children["kafka_nodes"] = {"children": {"kafka_controllers": None, "kafka_brokers": None}}
    group_vars["prism_service_groups"] = group_vars["prism_service_groups"] | {"kafka": "kafka_nodes"}
    group_vars |= {"kafka_broker_group": "kafka_brokers", "kafka_controller_group": "kafka_controllers"}
    proc, out = run(tmp_path, hosts, group_vars)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    nodes = rendered(out)
    assert nodes["prism-a.plant.internal"]["roles"] == ["broker", "controller"]
    assert nodes["prism-b.plant.internal"]["roles"] == ["controller"]
    assert nodes["prism-d.plant.internal"]["roles"] == ["broker"]
    controller = nodes["prism-b.plant.internal"]
    assert controller["env"]["KAFKA_LISTENERS"] == "CONTROLLER://:9093"
    assert "KAFKA_ADVERTISED_LISTENERS" not in controller["env"]
    assert "kafka-metadata-quorum.sh --bootstrap-controller localhost:9093" in controller["health"]
    assert nodes["prism-d.plant.internal"]["voters"] == [
        f"{i}@{ADDRESS[h]}:9093" for i, h in enumerate(HOSTS, start=1)
    ]
    assert nodes["prism-d.plant.internal"]["env"]["KAFKA_LISTENERS"] == "INTERNAL://:19092,EXTERNAL://:9092"


def test_the_single_host_layout_is_unchanged(tmp_path: Path) -> None:
    hosts: dict[str, Any] = {"docker_hosts": {"hosts": {"localhost": {}}}}
    proc, out = run(
        tmp_path, hosts, yaml.safe_load((ROOT / "inventories/dev/group_vars/all/prism.yml").read_text())
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    node = rendered(out)["localhost"]
    assert node["voters"] == ["1@kafka:9093"]
    assert node["env"]["KAFKA_ADVERTISED_LISTENERS"] == "INTERNAL://kafka:19092,EXTERNAL://127.0.0.1:9092"
    assert node["published"] == ["127.0.0.1:9092:9092/tcp"]
    assert all(p.startswith("127.0.0.1:") for p in node["all_published"])
    assert node["health"] == (
        "KAFKA_HEAP_OPTS=-Xmx64m KAFKA_JVM_PERFORMANCE_OPTS='-XX:+UseSerialGC -XX:TieredStopAtLevel=1'"
        " kafka-broker-api-versions.sh --bootstrap-server localhost:19092 | grep -q 'id: 1 '"
    )
    jobs = {j["job"]: j for j in node["scrape"]}
    assert jobs["node"]["targets"] == ["node_exporter:9100"] and jobs["kafka_jmx"]["targets"] == [
        "kafka:9404"
    ]
    assert all(j["host_targets"] == [] for j in node["scrape"])
    assert node["seeds"] is True
    # One Prometheus and one Alertmanager, as before: no replica label, no gossip, the Alertmanager at its alias.
    config = yaml.safe_load(node["prometheus_yml"])
    assert config["global"]["external_labels"] == {"prism_stack": "prism", "environment": "dev"}
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]}
    assert node["alertmanager_command"] == [
        "--config.file=/etc/alertmanager/alertmanager.yml",
        "--storage.path=/alertmanager",
        "--cluster.listen-address=",
    ]


@pytest.mark.parametrize("count", [2, 4])
def test_an_even_number_of_controllers_is_refused(tmp_path: Path, count: int) -> None:
    hosts, group_vars = cluster_inventory()
    members = hosts["all"]["children"]["docker_hosts"]["hosts"]
    if count == 4:
        members["prism-d.plant.internal"] = {"prism_host_address": "10.20.0.14", "kafka_node_id": 4}
    else:
        del members["prism-c.plant.internal"]
        group_vars["kafka_topic_defaults"] = {"replication_factor": 2, "configs": {"min.insync.replicas": 1}}
        group_vars["kafka_settings"] = {"default.replication.factor": 2, "min.insync.replicas": 1}
    refused(
        tmp_path,
        hosts,
        group_vars,
        f"kafka_controller_group 'docker_hosts' has {count} hosts",
        "an odd number of controllers, at least 3",
    )


def test_a_replication_factor_above_the_brokers_is_refused(tmp_path: Path) -> None:
    hosts, group_vars = cluster_inventory()
    group_vars["kafka_topic_defaults"] = copy.deepcopy(group_vars["kafka_topic_defaults"]) | {
        "replication_factor": 4
    }
    refused(
        tmp_path,
        hosts,
        group_vars,
        "replication factor 4 is above the 3 brokers of kafka_broker_group 'docker_hosts'",
        "topic orch.control.tasks",
    )


def test_min_insync_replicas_at_the_replication_factor_is_refused(tmp_path: Path) -> None:
    hosts, group_vars = cluster_inventory()
    group_vars["kafka_settings"] = group_vars["kafka_settings"] | {"min.insync.replicas": 3}
    refused(
        tmp_path,
        hosts,
        group_vars,
        "kafka_settings default.replication.factor / min.insync.replicas: min.insync.replicas 3 with replication factor 3",
        "set it below the replication factor, e.g. 2",
    )


def test_a_second_host_for_a_service_that_runs_once_is_refused(tmp_path: Path) -> None:
    hosts, group_vars = cluster_inventory()
    group_vars["prism_service_groups"] = group_vars["prism_service_groups"] | {"postgres": "docker_hosts"}
    refused(
        tmp_path,
        hosts,
        group_vars,
        "Service 'postgres' runs once, but inventory group 'docker_hosts' has 3 hosts",
        "prism_service_groups.postgres",
    )


@pytest.mark.parametrize("address", [None, "127.0.0.1", "10.20.0.11"])
def test_a_host_without_an_address_its_peers_reach_is_refused(tmp_path: Path, address: str | None) -> None:
    hosts, group_vars = cluster_inventory()
    host = hosts["all"]["children"]["docker_hosts"]["hosts"]["prism-c.plant.internal"]
    if address is None:
        del host["prism_host_address"]
    else:
        host["prism_host_address"] = address
    fragment = (
        "is also the address of prism-a.plant.internal"
        if address == "10.20.0.11"
        else "must be this host's own address that the other hosts reach"
    )
    refused(tmp_path, hosts, group_vars, "prism_host_address", fragment, "prism-c.plant.internal")


def test_a_repeated_node_id_is_refused(tmp_path: Path) -> None:
    hosts, group_vars = cluster_inventory()
    hosts["all"]["children"]["docker_hosts"]["hosts"]["prism-c.plant.internal"]["kafka_node_id"] = 2
    refused(
        tmp_path, hosts, group_vars, "kafka_node_id repeats among the Kafka hosts", "unique kafka_node_id"
    )
