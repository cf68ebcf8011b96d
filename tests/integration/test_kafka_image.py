"""The built Kafka image's storage contract: formatted once for CLUSTER_ID, never again, and never for
another cluster id."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from conftest import find_kafka_image

pytestmark = pytest.mark.integration

ID_A = "prismTestClusterAAAAAA"
ID_B = "prismTestClusterBBBBBA"


@pytest.fixture
def volume() -> Iterator[tuple[Any, str]]:
    client = docker.from_env()
    name = f"prism-test-kafka-data-{secrets.token_hex(4)}"
    client.volumes.create(name, labels={"org.prism.test": "kafka"})
    try:
        yield client, name
    finally:
        for container in client.containers.list(all=True, filters={"label": f"org.prism.test.volume={name}"}):
            container.remove(force=True, v=True)
        client.volumes.get(name).remove(force=True)
        client.close()


def start(client: Any, volume: str, cluster_id: str) -> Any:
    # No KAFKA_* settings: the image's single-node defaults, with our cluster id.
    return client.containers.run(
        find_kafka_image(client),
        detach=True,
        environment={"CLUSTER_ID": cluster_id},
        volumes={volume: {"bind": "/var/lib/kafka/data", "mode": "rw"}},
        mem_limit="1g",
        labels={"org.prism.test": "kafka", "org.prism.test.volume": volume},
    )


def logs_until(container: Any, needle: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        text = container.logs().decode(errors="replace")
        if needle in text or container.status == "exited":
            return text
        time.sleep(1)
    return container.logs().decode(errors="replace")


def test_formatted_once_and_refused_for_another_cluster_id(volume) -> None:
    client, name = volume
    first = start(client, name, ID_A)
    text = logs_until(first, "Kafka Server started")
    assert f"Formatting /var/lib/kafka/data for cluster id {ID_A}" in text
    assert "Kafka Server started" in text
    first.stop(timeout=30)

    other = start(client, name, ID_B)
    exit_status = other.wait(timeout=60)["StatusCode"]
    text = other.logs().decode(errors="replace")
    assert exit_status != 0
    assert f"formatted for cluster id {ID_A}, but CLUSTER_ID is {ID_B}" in text
    assert "Formatting" not in text

    again = start(client, name, ID_A)
    text = logs_until(again, "Kafka Server started")
    assert "Kafka Server started" in text
    assert "Formatting" not in text
