"""Shared fixtures for the default scenario's testinfra suite: project paths, secrets, a playbook runner."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import psycopg2
import pytest

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY") or Path(__file__).resolve().parents[3])
INVENTORY = ROOT / "inventories" / "molecule"
SECRETS = ROOT / ".secrets" / "molecule"
PREFIX = "prism_mol"
PG_PORT = 15432
PG_DB = "prism"

# The expected schema lives with the pytest suites (tests/expected_schema.py); the drift cycle recreates
# containers with scripts/container_spec.py, as the deploy benchmark's floor does.
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))
from container_spec import create_from_inspect  # noqa: E402


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


def crash(host, name: str, timeout: float = 120) -> dict:
    """kill -9 of the container's main process from the host: a crash, which the restart policy answers
    (`docker kill` would mark the container as stopped by an operator, and nothing would restart it).
    Waits until the container has started again and is healthy; returns its State."""
    before = inspect(host, name)["State"]
    host.run_expect([0], "kill -9 %s", str(before["Pid"]))
    deadline = time.monotonic() + timeout
    while True:
        state = inspect(host, name)["State"]
        if state["StartedAt"] != before["StartedAt"] and state.get("Health", {}).get("Status") == "healthy":
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not healthy {timeout} s after kill -9: {state}")
        time.sleep(0.2)


def wait_kafka_serves_groups(port: int, groups: frozenset[str], timeout: float = 120) -> float:
    """Seconds until the broker on 127.0.0.1:<port> answers metadata and ListGroups. A restarted broker answers
    metadata before its group coordinator has loaded __consumer_offsets (COORDINATOR_LOAD_IN_PROGRESS); until
    then the lag exporter's scrape fails. It can also answer an empty ListGroups before that load has begun, so
    served means ``groups`` (those listed before the restart) are listed again. A test that restarts Kafka ends
    here, so the next test finds it back."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import (
        CoordinatorLoadInProgressError,
        CoordinatorNotAvailableError,
        KafkaConnectionError,
        KafkaTimeoutError,
    )

    start = time.monotonic()
    last = ""
    while time.monotonic() - start < timeout:
        try:
            admin = KafkaAdminClient(bootstrap_servers=[f"127.0.0.1:{port}"], bootstrap_timeout_ms=3000)
        except (KafkaTimeoutError, KafkaConnectionError) as exc:  # kafka-python 3: not listening yet
            last = str(exc)
            time.sleep(1)
            continue
        try:
            listed = {g["group_id"] for g in admin.list_groups()}
            if groups <= listed:
                return time.monotonic() - start
            last = f"group coordinator lists {sorted(listed)}, not yet {sorted(groups - listed)}"
            time.sleep(1)
        except (CoordinatorLoadInProgressError, CoordinatorNotAvailableError) as exc:
            last = f"group coordinator not serving yet: {exc}"
            time.sleep(1)
        finally:
            admin.close()
    raise AssertionError(f"Kafka on port {port} does not serve groups {timeout} s after its restart: {last}")


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


# The drift cycle of test_drift.py (test_registry.py reads its repair run as well): each field a role sets on a
# container, changed outside Ansible on its own container, plus an edited redis.conf. The image drift runs
# node_exporter's container from redis_exporter's image.
DRIFTS = {
    "node_exporter": "image",
    "postgres_exporter": "env",
    "alertmanager": "command",
    "redis_exporter": "mount",
    "pgadmin": "published port",
    "postgres": "healthcheck",
    "probe": "memory",
    "kafka": "label",
    "prometheus": "user",
    "redis": "redis.conf",
}
# Running, and drifted by nobody: the cycle must not restart it.
UNTOUCHED = ["weaviate"]
REDIS_CONF_TASK = "redis : Configure | redis.conf from redis_settings, checked by the image's redis-server"


def _redis_conf(attrs: dict) -> Path:
    conf = Path(attrs["Config"]["Cmd"][-1])
    mount = next(m for m in attrs["Mounts"] if m["Destination"] == str(conf.parent))
    return Path(mount["Source"]) / conf.name


def _field(attrs: dict, what: str):
    """The value of one drifted field, as `docker inspect` shows it."""
    cfg, hc = attrs["Config"], attrs["HostConfig"]
    return {
        "image": lambda: attrs["Image"],
        "env": lambda: sorted(cfg["Env"] or []),
        "command": lambda: cfg["Cmd"],
        "mount": lambda: sorted((m.get("Source", ""), m["Target"]) for m in hc.get("Mounts") or []),
        "published port": lambda: hc["PortBindings"],
        "healthcheck": lambda: cfg["Healthcheck"],
        "memory": lambda: (hc["Memory"], hc["MemorySwap"]),
        "label": lambda: cfg["Labels"],
        "user": lambda: cfg["User"],
        "redis.conf": lambda: hashlib.sha256(_redis_conf(attrs).read_bytes()).hexdigest(),
    }[what]()


def _drift_spec(client: docker.DockerClient, what: str, cfg: dict, hc: dict) -> None:
    """Change one field of an inspected container's configuration, the way a hand edit would."""
    if what == "image":
        cfg["Image"] = client.api.inspect_container(f"{PREFIX}_redis_exporter")["Image"]
    elif what == "env":
        image_env = set(client.api.inspect_image(cfg["Image"])["Config"].get("Env") or [])
        ours = next(e for e in cfg["Env"] if e not in image_env)
        cfg["Env"] = [e + "-drift" if e == ours else e for e in cfg["Env"]]
    elif what == "command":
        cfg["Cmd"] = [*cfg["Cmd"], "--log.level=debug"]
    elif what == "mount":
        last = [m for m in hc["Mounts"] if m["Type"] == "bind"][-1]
        hc["Mounts"] = [m for m in hc["Mounts"] if m is not last]
    elif what == "published port":
        for bindings in hc["PortBindings"].values():
            for b in bindings:
                b["HostPort"] = ""
    elif what == "healthcheck":
        cfg["Healthcheck"] = dict(cfg["Healthcheck"], Interval=cfg["Healthcheck"]["Interval"] * 2)
    elif what == "label":
        cfg["Labels"] = dict(cfg["Labels"], **{"org.prism.address": "drift"})
    elif what == "user":
        cfg["User"] = "12345:12345"
    else:
        raise ValueError(what)


def _recreate(client: docker.DockerClient, name: str, what: str) -> None:
    """Remove the container and create it again from its own inspect data with one field changed."""
    attrs = client.api.inspect_container(name)
    cfg, hc = copy.deepcopy(attrs["Config"]), copy.deepcopy(attrs["HostConfig"])
    _drift_spec(client, what, cfg, hc)
    client.api.remove_container(name, force=True, v=True)
    create_from_inspect(client.api, attrs, cfg, hc)
    # The image drift runs node_exporter's entrypoint in an image without it: the start fails, the drift stays.
    with contextlib.suppress(docker.errors.APIError):
        client.api.start(name)


@dataclass
class Drift:
    before: dict = field(default_factory=dict)
    drifted: dict = field(default_factory=dict)
    after_check: dict = field(default_factory=dict)
    repaired: dict = field(default_factory=dict)
    untouched_started: dict = field(default_factory=dict)
    check: PlayResult | None = None
    repair: PlayResult | None = None


@pytest.fixture(scope="session")
def drift() -> Drift:
    """Drift every field (DRIFTS), then `--check --diff`, then the real run; the figures of each step."""
    client = docker.from_env()
    d = Drift()

    def snapshot() -> dict:
        return {s: _field(client.api.inspect_container(f"{PREFIX}_{s}"), w) for s, w in DRIFTS.items()}

    def started() -> dict:
        return {
            f"{PREFIX}_{s}": client.api.inspect_container(f"{PREFIX}_{s}")["State"]["StartedAt"]
            for s in UNTOUCHED
        }

    # From a converged stack: earlier tests may leave what a run puts back.
    converge = run_playbook()
    assert converge.rc == 0, converge.output[-3000:]
    d.before, untouched = snapshot(), started()
    for service, what in DRIFTS.items():
        name = f"{PREFIX}_{service}"
        if what == "memory":
            client.api.update_container(name, mem_limit="96m", memswap_limit="96m")
        elif what == "redis.conf":
            conf = _redis_conf(client.api.inspect_container(name))
            conf.write_text(conf.read_text() + "# edited outside Ansible\ntimeout 7\n")
        else:
            _recreate(client, name, what)
    d.drifted = snapshot()
    d.check = run_playbook("--check", "--diff")
    d.after_check = snapshot()
    d.repair = run_playbook()
    d.repaired = snapshot()
    d.untouched_started = {name: (untouched[name], now) for name, now in started().items()}
    return d
