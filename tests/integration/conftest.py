"""A real PostgreSQL 17 server in a throwaway container, and a way to run modules against it with Ansible.

The image is, in order: $PRISM_TEST_PG_IMAGE; the newest local image labelled
org.prism.image.service=postgres (built or loaded by the project); postgres:17 if present locally.
Nothing is pulled: no registry is assumed to be reachable.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import psycopg2
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGINS = REPO_ROOT / "plugins"
IMAGE_LABEL = "org.prism.image.service=postgres"
READY_TIMEOUT_S = 120


def find_image(client: docker.DockerClient) -> str:
    wanted = os.environ.get("PRISM_TEST_PG_IMAGE")
    if wanted:
        try:
            client.images.get(wanted)
        except docker.errors.ImageNotFound:
            pytest.fail(f"PRISM_TEST_PG_IMAGE={wanted} is not a local image: build or load it first.")
        return wanted
    labelled = client.images.list(filters={"label": IMAGE_LABEL})
    labelled = [image for image in labelled if image.tags]
    if labelled:
        newest = max(labelled, key=lambda image: image.attrs["Created"])
        return newest.tags[0]
    try:
        client.images.get("postgres:17")
    except docker.errors.ImageNotFound:
        pytest.fail(
            f"no PostgreSQL image: run `make deploy` (or `make molecule`) first. Looked for $PRISM_TEST_PG_IMAGE, "
            f"an image labelled {IMAGE_LABEL} and postgres:17."
        )
    return "postgres:17"


@dataclass
class PgServer:
    host: str
    port: int
    user: str
    password: str
    image: str

    def connect(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> Any:
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=user or self.user,
            password=password if user else self.password,
            dbname=dbname,
            connect_timeout=5,
        )

    def login_args(self, dbname: str) -> dict[str, Any]:
        return {
            "login_host": self.host,
            "login_port": self.port,
            "login_user": self.user,
            "login_password": self.password,
            "login_db": dbname,
        }


def _wait_ready(container: Any, server: PgServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            logs = container.logs(tail=40).decode(errors="replace")
            pytest.fail(f"PostgreSQL container from {server.image} exited during start:\n{logs}")
        try:
            conn = server.connect()
        except psycopg2.OperationalError as exc:
            last_error = str(exc).strip()
            time.sleep(1)
            continue
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version_num')::int")
            version = cursor.fetchone()[0]
        conn.close()
        assert version // 10000 == 17, f"{server.image} runs PostgreSQL {version}, expected 17"
        return
    logs = container.logs(tail=40).decode(errors="replace")
    pytest.fail(f"PostgreSQL in {server.image} not ready after {READY_TIMEOUT_S}s ({last_error}):\n{logs}")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"Docker engine not reachable ({exc}): start dockerd first.")
    image = find_image(client)
    password = secrets.token_hex(16)
    container = client.containers.run(
        image,
        detach=True,
        name=f"prism-test-pg-schema-{secrets.token_hex(4)}",
        environment={"POSTGRES_PASSWORD": password, "POSTGRES_DB": "prism_test"},
        ports={"5432/tcp": ("127.0.0.1", None)},
        labels={"org.prism.test": "pg_schema"},
    )
    try:
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"])
        server = PgServer(host="127.0.0.1", port=port, user="postgres", password=password, image=image)
        _wait_ready(container, server)
        yield server
    finally:
        container.remove(force=True, v=True)
        client.close()


def _admin(server: PgServer) -> Any:
    conn = server.connect("postgres")
    conn.autocommit = True
    return conn


@pytest.fixture
def database(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    admin = _admin(pg_server)
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@dataclass
class ModuleRun:
    rc: int
    result: dict[str, Any]
    output: str

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))


class AnsibleRunner:
    """Runs one task of a module with ansible-playbook, independent of the repo's ansible.cfg."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "ansible.cfg"
        config.write_text("[defaults]\n")
        bindir = Path(sys.executable).parent
        self.playbook_bin = str(bindir / "ansible-playbook")
        self.env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(config),
            "ANSIBLE_LIBRARY": str(PLUGINS / "modules"),
            "ANSIBLE_MODULE_UTILS": str(PLUGINS / "module_utils"),
            "ANSIBLE_DOC_FRAGMENT_PLUGINS": str(PLUGINS / "doc_fragments"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_HOME": str(workdir / "home"),
            "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
        }
        self._count = 0

    def start(
        self, module: str, args: dict[str, Any], *, check: bool = False, diff: bool = False
    ) -> subprocess.Popen[str]:
        self._count += 1
        playbook = self.workdir / f"play_{self._count}.yml"
        play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{"name": module, module: args}]}]
        playbook.write_text(yaml.safe_dump(play, sort_keys=False))
        cmd = [
            self.playbook_bin,
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            json.dumps({"ansible_python_interpreter": sys.executable}),
            str(playbook),
        ]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        return subprocess.Popen(
            cmd,
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def finish(proc: subprocess.Popen[str], timeout: float = 180) -> ModuleRun:
        stdout, stderr = proc.communicate(timeout=timeout)
        try:
            data = json.loads(stdout)
            result = data["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError) as exc:
            raise AssertionError(
                f"no task result from ansible-playbook (rc={proc.returncode}): {exc}\n{stdout}\n{stderr}"
            ) from exc
        return ModuleRun(rc=proc.returncode, result=result, output=stdout + stderr)

    def run(self, module: str, args: dict[str, Any], *, check: bool = False, diff: bool = False) -> ModuleRun:
        return self.finish(self.start(module, args, check=check, diff=diff))


@pytest.fixture
def runner(tmp_path: Path) -> AnsibleRunner:
    return AnsibleRunner(tmp_path / "ansible")


@pytest.fixture(scope="session")
def pg_image() -> str:
    """The PostgreSQL image the tests start throwaway containers from (see find_image)."""
    return find_image(docker.from_env())


# --- Kafka ------------------------------------------------------------------------------------------------
# A real Kafka 4.1 broker (KRaft, combined broker+controller) in a throwaway container, started from the
# project-built image (label org.prism.image.service=kafka) or $PRISM_TEST_KAFKA_IMAGE. Nothing is pulled.

KAFKA_READY_TIMEOUT_S = 120


@dataclass
class KafkaServer:
    bootstrap: str
    image: str
    container: Any

    def connection_args(self) -> dict[str, Any]:
        return {"bootstrap_servers": [self.bootstrap], "request_timeout": 20}


def find_service_image(client: docker.DockerClient, service: str, role: str) -> str:
    """$PRISM_TEST_<SERVICE>_IMAGE if set, else the newest project image labelled org.prism.image.service=<service>."""
    env = f"PRISM_TEST_{service.upper()}_IMAGE"
    label = f"org.prism.image.service={service}"
    wanted = os.environ.get(env)
    if wanted:
        try:
            client.images.get(wanted)
        except docker.errors.ImageNotFound:
            pytest.fail(f"{env}={wanted} is not a local image: build or load it first.")
        return wanted
    labelled = [image for image in client.images.list(filters={"label": label}) if image.tags]
    if not labelled:
        pytest.fail(
            f"no {service} image: run the deploy (or the {role} role's image step) first. Looked for "
            f"${env} and an image labelled {label}."
        )
    return max(labelled, key=lambda image: image.attrs["Created"]).tags[0]


def find_kafka_image(client: docker.DockerClient) -> str:
    return find_service_image(client, "kafka", "kafka")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_kafka_ready(container: Any, server: KafkaServer, groups: frozenset[str] = frozenset()) -> None:
    """Ready: metadata answers and ListGroups answers without an error and lists ``groups`` (those that had
    committed offsets before a restart). A restarted broker can answer an empty ListGroups before its group
    coordinator has even begun loading __consumer_offsets, then COORDINATOR_LOAD_IN_PROGRESS while it loads
    (both seen here); the groups listed mean the load is done."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import CoordinatorLoadInProgressError

    deadline = time.monotonic() + KAFKA_READY_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            logs = container.logs(tail=40).decode(errors="replace")
            pytest.fail(f"Kafka container from {server.image} exited during start:\n{logs}")
        try:
            admin = KafkaAdminClient(bootstrap_servers=[server.bootstrap], bootstrap_timeout_ms=3000)
        except Exception as exc:  # not listening yet
            last_error = str(exc)
            time.sleep(1)
            continue
        try:
            if admin.describe_cluster()["brokers"]:
                # A restarted broker answers metadata before its group coordinator has loaded
                # __consumer_offsets; until then ListGroups fails with COORDINATOR_LOAD_IN_PROGRESS (error 14).
                # Ready means both answer: the lag exporter and the consumer tests read groups.
                listed = {g["group_id"] for g in admin.list_groups()}
                if groups <= listed:
                    return
                last_error = f"group coordinator lists {sorted(listed)}, not yet {sorted(groups - listed)}"
                time.sleep(1)
        except CoordinatorLoadInProgressError as exc:
            last_error = f"group coordinator still loading: {exc}"
            time.sleep(1)
        finally:
            admin.close()
    logs = container.logs(tail=40).decode(errors="replace")
    pytest.fail(f"Kafka in {server.image} not ready after {KAFKA_READY_TIMEOUT_S}s ({last_error}):\n{logs}")


@pytest.fixture(scope="module")
def kafka_server() -> Iterator[KafkaServer]:
    """One broker per test module: a module that declares the shipped topics must not find them created by
    another (test_kafka_topics proves the first run creates all 14). The listener's container port equals the published host port, so the
    advertised 127.0.0.1:<port> works from the host and from inside the container alike."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"Docker engine not reachable ({exc}): start dockerd first.")
    image = find_kafka_image(client)
    port = _free_port()
    env = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://:{port},CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_HEAP_OPTS": "-Xms512m -Xmx512m",
        "CLUSTER_ID": "prismTestCluster000000",
    }
    container = client.containers.run(
        image,
        detach=True,
        name=f"prism-test-kafka-{secrets.token_hex(4)}",
        environment=env,
        ports={f"{port}/tcp": ("127.0.0.1", port)},
        mem_limit="1g",
        labels={"org.prism.test": "kafka"},
    )
    try:
        server = KafkaServer(bootstrap=f"127.0.0.1:{port}", image=image, container=container)
        wait_kafka_ready(container, server)
        yield server
    finally:
        container.remove(force=True, v=True)
        client.close()


@pytest.fixture(scope="session")
def session_runner(tmp_path_factory: pytest.TempPathFactory) -> AnsibleRunner:
    """An AnsibleRunner for session- or module-scoped fixtures (``runner`` is per test)."""
    return AnsibleRunner(tmp_path_factory.mktemp("ansible-session"))


# --- Weaviate ---------------------------------------------------------------------------------------------
# A real Weaviate 1.35 server in a throwaway container, from the project-built image (label
# org.prism.image.service=weaviate) or $PRISM_TEST_WEAVIATE_IMAGE, configured like the weaviate role does:
# API keys only, no anonymous access, no vectorizer. Nothing is pulled.

WEAVIATE_READY_TIMEOUT_S = 120


@dataclass
class WeaviateServer:
    host: str
    port: int
    grpc_port: int
    api_key: str
    image: str
    container: Any

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def connection_args(self) -> dict[str, Any]:
        return {
            "weaviate_host": self.host,
            "weaviate_port": self.port,
            "weaviate_grpc_port": self.grpc_port,
            "weaviate_api_key": self.api_key,
        }

    def client(self) -> Any:
        import weaviate
        from weaviate.classes.init import Auth

        return weaviate.connect_to_custom(
            http_host=self.host,
            http_port=self.port,
            http_secure=False,
            grpc_host=self.host,
            grpc_port=self.grpc_port,
            grpc_secure=False,
            auth_credentials=Auth.api_key(self.api_key),
        )


def find_weaviate_image(client: docker.DockerClient) -> str:
    return find_service_image(client, "weaviate", "weaviate")


def _wait_weaviate_ready(container: Any, server: WeaviateServer) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + WEAVIATE_READY_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            logs = container.logs(tail=40).decode(errors="replace")
            pytest.fail(f"Weaviate container from {server.image} exited during start:\n{logs}")
        try:
            with urllib.request.urlopen(f"{server.url}/v1/.well-known/ready", timeout=3) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(1)
    logs = container.logs(tail=40).decode(errors="replace")
    pytest.fail(
        f"Weaviate in {server.image} not ready after {WEAVIATE_READY_TIMEOUT_S}s ({last_error}):\n{logs}"
    )


def start_weaviate(client: docker.DockerClient, image: str, label: str) -> tuple[Any, WeaviateServer]:
    """One server with the role's settings on free loopback ports; the caller removes the container."""
    api_key = secrets.token_hex(20)
    container = client.containers.run(
        image,
        detach=True,
        name=f"prism-test-weaviate-{secrets.token_hex(4)}",
        environment={
            "PERSISTENCE_DATA_PATH": "/var/lib/weaviate",
            "DEFAULT_VECTORIZER_MODULE": "none",
            "ENABLE_MODULES": "backup-filesystem",
            "BACKUP_FILESYSTEM_PATH": "/var/lib/weaviate/backups",
            "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
            "AUTHENTICATION_APIKEY_ENABLED": "true",
            "AUTHENTICATION_APIKEY_ALLOWED_KEYS": api_key,
            "AUTHENTICATION_APIKEY_USERS": "prism-test",
            "CLUSTER_HOSTNAME": "node1",
            "QUERY_DEFAULTS_LIMIT": "25",
            "DISABLE_TELEMETRY": "true",
            "LIMIT_RESOURCES": "true",
            "GOMEMLIMIT": "1GiB",
        },
        ports={"8080/tcp": ("127.0.0.1", None), "50051/tcp": ("127.0.0.1", None)},
        user="1000:1000",
        read_only=True,
        tmpfs={"/tmp": "uid=1000,gid=1000"},
        mem_limit="1500m",
        labels={"org.prism.test": label},
    )
    container.reload()
    ports = container.attrs["NetworkSettings"]["Ports"]
    server = WeaviateServer(
        host="127.0.0.1",
        port=int(ports["8080/tcp"][0]["HostPort"]),
        grpc_port=int(ports["50051/tcp"][0]["HostPort"]),
        api_key=api_key,
        image=image,
        container=container,
    )
    return container, server


@pytest.fixture(scope="session")
def weaviate_image() -> str:
    return find_weaviate_image(docker.from_env())


@pytest.fixture(scope="session")
def weaviate_server(weaviate_image: str) -> Iterator[WeaviateServer]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"Docker engine not reachable ({exc}): start dockerd first.")
    container, server = start_weaviate(client, weaviate_image, "weaviate")
    try:
        _wait_weaviate_ready(container, server)
        yield server
    finally:
        container.remove(force=True, v=True)
        client.close()


def run_playbook(
    inventory: Path, playbook: str | Path, *args: str, timeout: int = 1500
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook from the project root with its ansible.cfg, uncoloured, output captured."""
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    return subprocess.run(
        ["ansible-playbook", str(playbook), "-i", str(inventory), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_inventory(
    inventory: Path, host: dict[str, Any], keep: set[str], group_vars: dict[str, Any]
) -> Path:
    """An inventory of one Docker host, this machine (``host``: its name and vars), that runs only the services of
    ``keep``: prism_service_groups places every other service of the registry on a group it does not have."""
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"docker_hosts": {"hosts": host}}))
    registry = yaml.safe_load((REPO_ROOT / "roles" / "prism" / "vars" / "main" / "services.yml").read_text())
    others = sorted(set(registry["__prism_builtin_services"]) - keep)
    placed = {"prism_service_groups": {name: "not_in_this_inventory" for name in others}}
    (inventory / "group_vars" / "all" / "prism.yml").write_text(yaml.safe_dump(group_vars | placed))
    return inventory
