#!/usr/bin/python
# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: prism_container_wait
short_description: Wait until several Docker containers are healthy, all at once
description:
  - Polls every named container together until each reports C(healthy) (or, without a healthcheck, runs),
    so a deploy that starts all services first waits about as long as the slowest one.
  - Fails, naming each container, when one is C(unhealthy), has exited, is missing, or is still starting
    after O(timeout) seconds; the message carries its last health-check output.
  - Read-only; never reports a change.
options:
  names:
    description: Container names to wait for.
    type: list
    elements: str
    required: true
  timeout:
    description: Seconds to wait for all of them together.
    type: int
    default: 180
  interval:
    description: Seconds between polls.
    type: float
    default: 1.0
  allow_absent:
    description: Treat a missing container as fine (for check mode on a host where nothing runs yet).
    type: bool
    default: false
  docker_host:
    description: Docker engine address.
    type: str
    default: unix:///var/run/docker.sock
attributes:
  check_mode:
    description: Only reads container state, so it runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
requirements:
  - docker (Python SDK)
author:
  - PRISM orchestration team
"""

EXAMPLES = r"""
- name: Wait for every started container together
  prism_container_wait:
    names: [prism_postgres, prism_redis]
    timeout: 180
"""

RETURN = r"""
containers:
  description: Per container, the state it reached, after how many seconds, and its last health-check output.
  returned: always
  type: dict
  sample: {prism_postgres: {state: healthy, seconds: 6.2, output: "127.0.0.1:5432 - accepting connections"}}
slowest:
  description: Seconds until the last container reached its state.
  returned: always
  type: float
  sample: 6.2
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible.module_utils.prism_container_wait import Observation, failures, wait_all  # noqa: E402

try:
    import docker
    import docker.errors

    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()


def observer(client):
    def observe(name: str) -> Observation:
        try:
            attrs = client.api.inspect_container(name)
        except docker.errors.NotFound:
            return Observation(exists=False)
        state = attrs.get("State", {})
        health = state.get("Health")
        log = (health or {}).get("Log") or [{}]
        return Observation(
            exists=True,
            running=bool(state.get("Running")),
            status=state.get("Status", ""),
            health=health.get("Status") if health else None,
            output=log[-1].get("Output", "") or "",
        )

    return observe


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str", "required": True},
            "timeout": {"type": "int", "default": 180},
            "interval": {"type": "float", "default": 1.0},
            "allow_absent": {"type": "bool", "default": False},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
        },
        supports_check_mode=True,
    )
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"), exception=DOCKER_IMPORT_ERROR)
    p = module.params
    if p["timeout"] < 0 or p["interval"] <= 0:
        module.fail_json(msg="timeout must be >= 0 and interval > 0 seconds.")
    try:
        client = docker.DockerClient(base_url=p["docker_host"])
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the engine is reported the same way
        module.fail_json(
            msg=f"The Docker engine at {p['docker_host']} does not answer: {exc}",
            exception=traceback.format_exc(),
        )
    results = wait_all(p["names"], observer(client), timeout=p["timeout"], interval=p["interval"])
    slowest = max((r["seconds"] for r in results.values()), default=0.0)
    problems = failures(results, allow_absent=p["allow_absent"])
    if problems:
        module.fail_json(msg=" ".join(problems), containers=results, slowest=slowest)
    module.exit_json(changed=False, containers=results, slowest=slowest)


if __name__ == "__main__":
    main()
