"""Monitoring on several hosts, run for real on this machine: inventories/cluster as the layout renders it
(tests/layout_inventory.py), with its three hosts' addresses made addresses of a Docker network here.

- The three Alertmanagers, started with the commands the role renders, form one cluster: each sees three
  peers and is ready, a silence made on one reaches the other two (gossip), and each answers on its API port
  and on its peer API port (the one the other hosts' Prometheus sends to).
- Each Prometheus replica's prometheus.yml passes the image's `promtool check config`.

The images are the newest local ones labelled org.prism.image.service=alertmanager / prometheus (built or
loaded by a deploy, e.g. Molecule)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
import pytest
import requests
import yaml
from layout_inventory import HOSTS, cluster_inventory, rendered, run

pytestmark = pytest.mark.integration

SUBNET = "172.30.231.0/24"
ADDRESS = {host: f"172.30.231.{11 + n}" for n, host in enumerate(HOSTS)}
NETWORK = "prism_monitoring_cluster_test"
READY_S = 90


def _image(client: docker.DockerClient, service: str) -> str:
    labelled = [
        i for i in client.images.list(filters={"label": f"org.prism.image.service={service}"}) if i.tags
    ]
    if not labelled:
        pytest.fail(
            f"no {service} image (label org.prism.image.service={service}): deploy once (make molecule)"
        )
    return str(max(labelled, key=lambda i: i.attrs["Created"]).tags[0])


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    c = docker.from_env()
    yield c
    c.close()


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    hosts, group_vars = cluster_inventory()
    for host, address in ADDRESS.items():
        hosts["all"]["children"]["docker_hosts"]["hosts"][host]["prism_host_address"] = address
    proc, out = run(tmp_path_factory.mktemp("layout"), hosts, group_vars)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return rendered(out)


@pytest.fixture(scope="module")
def alertmanagers(
    client: docker.DockerClient, layout: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    image = _image(client, "alertmanager")
    network = client.networks.create(
        NETWORK, ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=SUBNET)])
    )
    containers = []
    try:
        for n, host in enumerate(HOSTS):
            conf = tmp_path_factory.mktemp(f"alertmanager{n}")
            (conf / "alertmanager.yml").write_text(layout[host]["alertmanager_yml"])
            conf.chmod(0o755)
            (conf / "alertmanager.yml").chmod(0o644)
            container = client.containers.create(
                image,
                command=layout[host]["alertmanager_command"],
                name=f"{NETWORK}_{n}",
                user="65534:65534",
                read_only=True,
                cap_drop=["ALL"],
                tmpfs={"/alertmanager": "uid=65534"},
                volumes={str(conf): {"bind": "/etc/alertmanager", "mode": "ro"}},
                network=NETWORK,
                networking_config={NETWORK: client.api.create_endpoint_config(ipv4_address=ADDRESS[host])},
            )
            containers.append(container)
        for container in containers:
            container.start()
        yield ADDRESS
    finally:
        for container in containers:
            print(f"{container.name}: {container.logs(tail=5).decode(errors='replace')}")
            container.remove(force=True, v=True)
        network.remove()


def _status(address: str, port: int = 9093) -> dict[str, Any]:
    response = requests.get(f"http://{address}:{port}/api/v2/status", timeout=3)
    response.raise_for_status()
    return dict(response.json())


def test_the_alertmanagers_form_one_cluster_and_gossip_silences(alertmanagers: dict[str, str]) -> None:
    start = time.monotonic()
    peers: dict[str, list[str]] = {}
    while time.monotonic() - start < READY_S:
        try:
            statuses = {host: _status(address) for host, address in alertmanagers.items()}
        except requests.RequestException:
            time.sleep(1)
            continue
        peers = {h: sorted(p["address"] for p in s["cluster"]["peers"]) for h, s in statuses.items()}
        if all(s["cluster"]["status"] == "ready" and len(peers[h]) == 3 for h, s in statuses.items()):
            break
        time.sleep(1)
    formed = time.monotonic() - start
    print(f"alertmanager cluster: 3 peers each, ready, {formed:.1f} s after start; peers {peers}")
    wanted = sorted(f"{address}:9094" for address in alertmanagers.values())
    assert all(p == wanted for p in peers.values()), f"not one cluster of three within {READY_S} s: {peers}"

    # The peer API port (what the other hosts' Prometheus sends to) answers too.
    for address in alertmanagers.values():
        assert _status(address, 9095)["cluster"]["status"] == "ready"

    first, *others = alertmanagers.values()
    silence: dict[str, Any] = {
        "matchers": [{"name": "alertname", "value": "PrismClusterTest", "isRegex": False}],
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
        "createdBy": "test_monitoring_cluster",
        "comment": "gossip test",
    }
    made = requests.post(f"http://{first}:9093/api/v2/silences", json=silence, timeout=5)
    made.raise_for_status()
    silence_id = made.json()["silenceID"]
    start = time.monotonic()
    seen: set[str] = set()
    while time.monotonic() - start < 30 and len(seen) < len(others):
        for address in others:
            ids = {s["id"] for s in requests.get(f"http://{address}:9093/api/v2/silences", timeout=3).json()}
            if silence_id in ids:
                seen.add(address)
        time.sleep(0.5)
    print(
        f"silence {silence_id} made on {first}, seen on {sorted(seen)} after {time.monotonic() - start:.1f} s"
    )
    assert seen == set(others), f"the silence reached {sorted(seen)} of {others} within 30 s"


def test_each_prometheus_replica_config_passes_promtool(
    client: docker.DockerClient, layout: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    image = _image(client, "prometheus")
    replicas = [h for h in HOSTS if layout[h]["prometheus_yml"]]
    assert replicas == HOSTS[:2]
    for host in replicas:
        conf = tmp_path / host
        conf.mkdir()
        (conf / "prometheus.yml").write_text(layout[host]["prometheus_yml"])
        assert yaml.safe_load(layout[host]["prometheus_yml"])["global"]["external_labels"]["replica"] == host
        container = client.containers.run(
            image,
            entrypoint="/bin/promtool",
            command=["check", "config", "/etc/prometheus/prometheus.yml"],
            volumes={str(conf): {"bind": "/etc/prometheus", "mode": "ro"}},
            network_mode="none",
            user="0:0",
            detach=True,
        )
        try:
            rc = container.wait(timeout=120)["StatusCode"]
            out = container.logs().decode()
        finally:
            container.remove(force=True, v=True)
        print(f"{host}: promtool check config: {out.strip()}")
        assert rc == 0, out
        assert "SUCCESS" in out
