"""Wait for several containers to become healthy at once (logic for the prism_container_wait module).

The polling is pure: it is given a function that observes one container, a clock and a sleep, so it is
unit-tested without Docker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Terminal states that count as success, and those that end the wait for a container with a failure.
GOOD = ("healthy", "running")
BAD = ("unhealthy", "exited", "absent")


@dataclass(frozen=True)
class Observation:
    """What Docker says of one container right now."""

    exists: bool
    running: bool = False
    status: str = ""  # Docker's State.Status: running, exited, restarting, ...
    health: str | None = None  # State.Health.Status, None when the image has no healthcheck
    output: str = ""  # last health-check output


def classify(obs: Observation) -> str:
    """One word for where a container is: healthy, running (no healthcheck), starting, or a BAD state."""
    if not obs.exists:
        return "absent"
    if not obs.running:
        return "restarting" if obs.status == "restarting" else "exited"
    if obs.health is None:
        return "running"
    return obs.health  # starting, healthy, unhealthy


def wait_all(
    names: list[str],
    observe: Callable[[str], Observation],
    timeout: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict]:
    """Poll every container until each is in a GOOD or BAD state, or the timeout passes.

    Returns {name: {"state": ..., "seconds": time until that state was seen, "output": last health output}}.
    A container still starting when time is up gets state "timeout".
    """
    start = clock()
    results: dict[str, dict] = {}
    while True:
        elapsed = clock() - start
        for name in names:
            if name in results:
                continue
            obs = observe(name)
            state = classify(obs)
            if state in GOOD or state in BAD:
                results[name] = {"state": state, "seconds": round(elapsed, 1), "output": obs.output.strip()}
        if len(results) == len(names):
            return results
        if elapsed >= timeout:
            for name in names:
                if name not in results:
                    obs = observe(name)
                    results[name] = {
                        "state": "timeout",
                        "seconds": round(elapsed, 1),
                        "output": obs.output.strip(),
                    }
            return results
        sleep(interval)


def failures(results: dict[str, dict], allow_absent: bool = False) -> list[str]:
    """Human-readable lines for the containers that did not come up, each with where to look next."""
    lines = []
    for name, res in sorted(results.items()):
        if res["state"] in GOOD or (allow_absent and res["state"] == "absent"):
            continue
        detail = f" Last health check: {res['output'][-300:]}" if res["output"] else ""
        lines.append(f"{name} is {res['state']} after {res['seconds']} s.{detail} See `docker logs {name}`.")
    return lines
