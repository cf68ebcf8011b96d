"""Polling logic of prism_container_wait, driven by a fake clock and scripted observations."""

from __future__ import annotations

from ansible.module_utils.prism_container_wait import Observation, classify, failures, wait_all


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted(script: dict[str, list[Observation]], clock: FakeClock, interval: float):
    """Each container follows its list of observations, one per poll; the last one repeats."""

    def observe(name: str) -> Observation:
        steps = script[name]
        return steps[min(int(clock.now / interval), len(steps) - 1)]

    return observe


STARTING = Observation(exists=True, running=True, status="running", health="starting")
HEALTHY = Observation(
    exists=True, running=True, status="running", health="healthy", output="accepting connections"
)
UNHEALTHY = Observation(exists=True, running=True, status="running", health="unhealthy", output="no response")


def run(script, timeout=30.0, interval=1.0):
    clock = FakeClock()
    return wait_all(list(script), scripted(script, clock, interval), timeout, interval, clock, clock.sleep)


def test_classify():
    assert classify(Observation(exists=False)) == "absent"
    assert classify(Observation(exists=True, running=False, status="exited")) == "exited"
    assert classify(Observation(exists=True, running=False, status="restarting")) == "restarting"
    assert classify(Observation(exists=True, running=True, status="running")) == "running"
    assert classify(STARTING) == "starting"


def test_waits_for_the_slowest_and_times_each():
    results = run({"fast": [STARTING, HEALTHY], "slow": [STARTING] * 5 + [HEALTHY]})
    assert results["fast"] == {"state": "healthy", "seconds": 1.0, "output": "accepting connections"}
    assert results["slow"]["state"] == "healthy" and results["slow"]["seconds"] == 5.0
    assert failures(results) == []


def test_unhealthy_ends_the_wait_for_that_container_with_its_output():
    results = run({"db": [STARTING, UNHEALTHY], "cache": [HEALTHY]})
    assert results["db"]["state"] == "unhealthy"
    [line] = failures(results)
    assert (
        line.startswith("db is unhealthy after 1.0 s.") and "no response" in line and "docker logs db" in line
    )


def test_timeout_names_the_container_still_starting():
    results = run({"db": [STARTING]}, timeout=4.0)
    assert results["db"]["state"] == "timeout" and results["db"]["seconds"] == 4.0
    assert failures(results)[0].startswith("db is timeout after 4.0 s.")


def test_absent_fails_unless_allowed():
    results = run({"db": [Observation(exists=False)]})
    assert results["db"]["state"] == "absent"
    assert len(failures(results)) == 1
    assert failures(results, allow_absent=True) == []


def test_a_container_without_healthcheck_counts_when_running():
    results = run({"exporter": [Observation(exists=True, running=True, status="running")]})
    assert results["exporter"]["state"] == "running" and failures(results) == []


def test_an_exited_container_fails():
    results = run({"db": [STARTING, Observation(exists=True, running=False, status="exited")]})
    assert results["db"]["state"] == "exited" and len(failures(results)) == 1
