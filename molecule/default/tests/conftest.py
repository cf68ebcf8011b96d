"""Shared fixtures for the default scenario's testinfra suite: project paths, secrets, a playbook runner."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY") or Path(__file__).resolve().parents[3])
INVENTORY = ROOT / "inventories" / "molecule"
SECRETS = ROOT / ".secrets" / "molecule"
PREFIX = "prism_mol"
PG_PORT = 15432
PG_DB = "prism"

# The expected schema lives with the pytest suites (tests/expected_schema.py).
sys.path.insert(0, str(ROOT / "tests"))


@dataclass
class PlayResult:
    rc: int
    output: str

    @property
    def recap(self) -> dict[str, int]:
        match = re.search(r"^localhost\s*:\s*(.*)$", self.output, re.M)
        assert match, f"no PLAY RECAP in output:\n{self.output[-3000:]}"
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


# The registry's test service (tests/roles/prism_probe), deployed with the stack by this scenario's converge
# (molecule.yml): every run here sees the same registry as the converge did.
PROBE_VARS = ROOT / "tests" / "registry_probe.yml"
PROBE_ROLES = ROOT / "tests" / "roles"


def run_playbook(
    *args: str, playbook: str = "site.yml", timeout: int = 900, with_probe: bool = True
) -> PlayResult:
    """Run a project playbook against the molecule inventory, the way an operator would; with the registry's
    test service where this scenario's converge deployed it (with_probe: the backup scenario's does not)."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=f"{ROOT / 'roles'}:{PROBE_ROLES}",
        MOLECULE_PROJECT_DIRECTORY=str(ROOT),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    proc = subprocess.run(
        [
            "ansible-playbook",
            playbook,
            "-i",
            str(INVENTORY),
            *(["-e", f"@{PROBE_VARS}"] if with_probe else []),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PlayResult(proc.returncode, proc.stdout + proc.stderr)


def secret(name: str) -> str:
    return (SECRETS / name).read_text().strip()


def pg_connect(user: str = "postgres", password_file: str = "postgres_superuser_password"):
    conn = psycopg2.connect(
        host="127.0.0.1",
        port=PG_PORT,
        dbname=PG_DB,
        user=user,
        password=secret(password_file),
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


@pytest.fixture()
def superuser():
    conn = pg_connect()
    yield conn
    conn.close()


@pytest.fixture()
def app_user():
    conn = pg_connect("prism_app", "postgres_app_password")
    yield conn
    conn.close()


def inspect(host, name: str) -> dict:
    return json.loads(host.check_output("docker inspect %s", name))[0]


def assert_healthy_and_hardened(host, name: str, volume: str, data_path: str) -> dict:
    """The guarantees every service container gets from roles/prism/tasks/containers.yml; returns the
    inspect data so a service test can check its own extras."""
    c = inspect(host, name)
    assert c["State"]["Health"]["Status"] == "healthy"
    assert c["State"]["Running"] is True
    hc = c["HostConfig"]
    assert "no-new-privileges:true" in hc["SecurityOpt"]
    assert hc["Memory"] > 0 and hc["MemorySwap"] == hc["Memory"]
    assert hc["PidsLimit"] and hc["PidsLimit"] > 0
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"
    assert hc["LogConfig"]["Config"].get("max-size") == "10m"
    assert c["Config"]["Labels"]["org.prism.image.source"] in {"registry", "archive", "build"}
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts[data_path]["Type"] == "volume"
    assert mounts[data_path]["Name"] == volume
    return c


def assert_loopback_only(host, name: str, container_port: int, host_port: int) -> None:
    """Published on 127.0.0.1 only: in Docker's binding and in what the host listens on."""
    bindings = inspect(host, name)["HostConfig"]["PortBindings"][f"{container_port}/tcp"]
    assert [(b["HostIp"], b["HostPort"]) for b in bindings] == [("127.0.0.1", str(host_port))]
    assert host.socket(f"tcp://127.0.0.1:{host_port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{host_port}").is_listening
