"""Deploy benchmark of site.yml against a floor measured in the same run (scripts/bench_deploy.sh).

Prints, with the machine's load before each phase:
  - the no-op run: task count (from the ansible.posix.json callback: every task that ran or was skipped),
    changed count, and the median wall time of N runs;
  - the same for `--check --diff` on the converged stack;
  - the warm deploy (images present, the stack's containers and volumes removed): time until every container
    is healthy, the seeds timed separately, median of N;
  - the floor: the same containers, taken from `docker inspect` of the converged run, created at once through
    the Docker API on empty volumes and waited on until all are healthy, median of N; and the ratio.

It removes the inventory's containers and volumes (label org.prism.stack=<prefix>) for the warm phases: run
it on a dev host, never on a plant. It ends with a converged stack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import docker
from container_spec import create_from_inspect

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    return "load {}".format(" ".join(Path("/proc/loadavg").read_text().split()[:3]))


def playbook(inventory: str, *args: str) -> tuple[float, dict]:
    env = dict(
        os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")
    )
    start = time.monotonic()
    proc = subprocess.run(
        ["ansible-playbook", "site.yml", "-i", inventory, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(
            f"site.yml {' '.join(args)} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    return elapsed, json.loads(proc.stdout)


def tasks_of(report: dict) -> list[dict]:
    return [t for play in report["plays"] for t in play["tasks"]]


def seed_seconds(report: dict) -> float:
    """Wall time of the seeds: site.yml runs them after the health wait and before the status table."""
    total, seeding = 0.0, False
    for task in tasks_of(report):
        # The json callback names a role's task "<role> : <name>".
        name = task["task"]["name"].split(" : ")[-1]
        if name.startswith("Status |"):
            break
        if seeding:
            dur = task["task"].get("duration") or {}
            if dur.get("start") and dur.get("end"):
                total += _seconds(dur["end"]) - _seconds(dur["start"])
        if name == "Health | Wait until every container reports healthy":
            seeding = True
    return total


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def stack(client: docker.DockerClient, prefix: str) -> list:
    return client.containers.list(all=True, filters={"label": f"org.prism.stack={prefix}"})


def remove_stack(client: docker.DockerClient, prefix: str) -> None:
    volumes = set()
    for c in stack(client, prefix):
        volumes.update(m["Name"] for m in c.attrs["Mounts"] if m["Type"] == "volume")
        c.remove(force=True, v=True)
    for name in volumes:
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(name).remove(force=True)


def wait_healthy(client: docker.DockerClient, names: list[str], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for name in list(pending):
            state = client.api.inspect_container(name)["State"]
            if state.get("Health", {}).get("Status") == "healthy":
                pending.discard(name)
        if time.monotonic() > deadline:
            sys.exit(f"floor: not healthy after {timeout} s: {sorted(pending)}")
        time.sleep(0.2)


def floor(client: docker.DockerClient, specs: list[dict]) -> float:
    """Create and start the inspected containers through the API, at once, and wait until all are healthy."""
    api = client.api
    start = time.monotonic()
    for s in specs:
        for m in s["Mounts"]:
            if m["Type"] == "volume":
                client.volumes.create(m["Name"], labels={"org.prism.bench": "floor"})
        create_from_inspect(api, s)
    for s in specs:
        api.start(s["Name"].lstrip("/"))
    wait_healthy(client, [s["Name"].lstrip("/") for s in specs])
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-i", "--inventory", default="inventories/dev")
    parser.add_argument("--prefix", default="prism", help="prism_name_prefix of the inventory")
    parser.add_argument("-n", "--runs", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env()

    print(f"converge first ({load()})", flush=True)
    playbook(args.inventory)

    for label, extra in (("no-op", ()), ("--check --diff", ("--check", "--diff"))):
        times, report = [], {}
        print(f"{label}: {args.runs} runs ({load()})", flush=True)
        for _ in range(args.runs):
            elapsed, report = playbook(args.inventory, *extra)
            times.append(elapsed)
        stats = next(iter(report["stats"].values()))
        print(
            f"  {label}: tasks {len(tasks_of(report))}, changed {stats.get('changed', 0)}, "
            f"median {statistics.median(times):.1f} s (runs {', '.join(f'{t:.1f}' for t in times)})",
            flush=True,
        )

    specs = [client.api.inspect_container(c.id) for c in stack(client, args.prefix)]
    # Dependencies first, as site.yml starts them: the registry order is the creation order of the converge.
    specs.sort(key=lambda s: s["Created"])
    ours, seeds, floors = [], [], []
    for run in range(args.runs):
        remove_stack(client, args.prefix)
        print(f"warm run {run + 1}: floor ({load()})", flush=True)
        floors.append(floor(client, specs))
        remove_stack(client, args.prefix)
        print(f"warm run {run + 1}: site.yml ({load()})", flush=True)
        elapsed, report = playbook(args.inventory)
        seed = seed_seconds(report)
        ours.append(elapsed - seed)
        seeds.append(seed)
        print(
            f"  floor {floors[-1]:.1f} s, site.yml to healthy {ours[-1]:.1f} s, seeds {seed:.1f} s",
            flush=True,
        )
    f, o = statistics.median(floors), statistics.median(ours)
    print(
        f"warm deploy: floor {f:.1f} s, site.yml to all healthy {o:.1f} s (seeds {statistics.median(seeds):.1f} s apart), "
        f"ratio {o / f:.2f} (target <= 1.5), median of {args.runs} ({load()})"
    )


if __name__ == "__main__":
    main()
