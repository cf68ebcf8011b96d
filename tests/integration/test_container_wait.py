"""prism_container_wait against real containers on the local engine."""

from __future__ import annotations

import uuid

import docker
import pytest

pytestmark = pytest.mark.integration

SECOND = 1_000_000_000  # healthcheck durations are in nanoseconds


@pytest.fixture()
def containers(pg_image):
    client = docker.from_env()
    made = []

    def make(test: list[str], start_period: int = 0) -> str:
        name = f"prism_test_wait_{uuid.uuid4().hex[:8]}"
        made.append(
            client.containers.run(
                pg_image,
                ["sleep", "300"],
                name=name,
                detach=True,
                healthcheck={
                    "test": test,
                    "interval": SECOND,
                    "timeout": 5 * SECOND,
                    "retries": 1,
                    # Failed probes in the start period leave the container "starting", not unhealthy.
                    "start_period": start_period * SECOND,
                },
            )
        )
        return name

    yield make
    for container in made:
        container.remove(force=True, v=True)


def test_waits_for_all_healthy(runner, containers):
    # The second one turns healthy only 10 s after its start, well after the module's first look (with a
    # plain `sleep 2` probe a loaded machine started the module after both were healthy: slowest was 0).
    slow = [
        "CMD-SHELL",
        "test -f /tmp/t0 || date +%s > /tmp/t0; [ $(( $(date +%s) - $(cat /tmp/t0) )) -ge 10 ]",
    ]
    names = [containers(["CMD", "true"]), containers(slow, start_period=60)]
    run = runner.run("prism_container_wait", {"names": names, "timeout": 60, "interval": 0.5})
    assert not run.failed, run.output
    assert run.result["changed"] is False
    assert {n: r["state"] for n, r in run.result["containers"].items()} == dict.fromkeys(names, "healthy")
    assert run.result["slowest"] > 0


def test_unhealthy_and_missing_containers_fail_by_name(runner, containers):
    sick = containers(["CMD-SHELL", "echo disk on fire; exit 1"])
    missing = f"prism_test_wait_missing_{uuid.uuid4().hex[:8]}"
    run = runner.run("prism_container_wait", {"names": [sick, missing], "timeout": 60, "interval": 0.5})
    assert run.failed
    assert f"{sick} is unhealthy" in run.result["msg"] and "disk on fire" in run.result["msg"]
    assert f"{missing} is absent" in run.result["msg"]


def test_missing_allowed_in_check_mode(runner):
    missing = f"prism_test_wait_missing_{uuid.uuid4().hex[:8]}"
    run = runner.run("prism_container_wait", {"names": [missing], "allow_absent": True}, check=True)
    assert not run.failed, run.output
    assert run.result["containers"][missing]["state"] == "absent"
