"""site.yml with a bind address other than 127.0.0.1: the seeds, like every host-side client, connect to the
published ports on prism_bind_address (they used to connect to a literal 127.0.0.1 and failed).

A stack of its own (prefix prism_bind, its own network, ports and host directory) with PostgreSQL and
Weaviate only: prism_service_groups places every other service of the registry on a group this inventory
does not have. 127.0.0.2 is loopback too, so nothing leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import psycopg2
import pytest
import requests
from conftest import run_playbook, write_inventory

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "127.0.0.2"
PREFIX = "prism_bind"
PG_PORT = 25432
WEAVIATE_PORT = 28090
KEEP = {"postgres", "weaviate"}


@pytest.fixture(scope="module")
def bound_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    base = tmp_path_factory.mktemp("bind")
    inventory = write_inventory(
        base / "inventory",
        {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"}},
        KEEP,
        {
            "prism_environment": "bind",
            "prism_secrets_dir": str(base / "inventory" / "secrets"),
            "prism_image_build_fallback": True,
            "prism_name_prefix": PREFIX,
            "prism_network": "orch_network_bind",
            "prism_base_dir": "/opt/prism-bind",
            "prism_bind_address": ADDRESS,
            # The dev and Molecule stacks may run beside it on this machine; and a dev host's warning
            # instead of a refusal is proven here with a disk minimum no host has.
            "prism_hardware_check": "warn",
            "prism_min_free_disk_gb": 1000000,
            "postgres_port": PG_PORT,
            "weaviate_port": WEAVIATE_PORT,
            "weaviate_grpc_port": 25051,
            "weaviate_memory": "1g",
            "weaviate_gomemlimit": "800MiB",
        },
    )
    # A stack that a killed run left behind holds data made with that run's secrets, and the preflight would
    # refuse these new ones (kept secrets): remove it first, as Molecule's destroy does.
    leftover = run_playbook(inventory, "molecule/resources/destroy.yml")
    assert leftover.returncode == 0, leftover.stdout[-3000:]
    result = run_playbook(inventory, "site.yml")
    output = result.stdout + result.stderr
    try:
        if result.returncode != 0:
            pytest.fail(f"site.yml with prism_bind_address={ADDRESS} failed:\n{output[-5000:]}")
        yield inventory, output
    finally:
        destroyed = run_playbook(inventory, "molecule/resources/destroy.yml")
        assert destroyed.returncode == 0, destroyed.stdout[-3000:]


def test_a_host_too_small_only_warns_with_hardware_check_warn(bound_stack: tuple[Path, str]) -> None:
    _, output = bound_stack
    flat = " ".join(output.split())
    assert "WARNING:" in flat and "is too small for the services placed on it" in flat
    assert "prism_min_free_disk_gb (1000000)" in flat
    assert "services need" in flat and "postgres 1g" in flat


def _containers() -> list:
    return docker.from_env().containers.list(all=True, filters={"label": f"org.prism.stack={PREFIX}"})


def test_only_the_placed_services_ran(bound_stack: tuple[Path, str]) -> None:
    assert sorted(c.name for c in _containers()) == [f"{PREFIX}_postgres", f"{PREFIX}_weaviate"]


def test_ports_bind_to_the_address(bound_stack: tuple[Path, str]) -> None:
    bindings = [
        b for c in _containers() for port in c.attrs["HostConfig"]["PortBindings"].values() for b in port
    ]
    assert bindings and {b["HostIp"] for b in bindings} == {ADDRESS}


def test_postgres_seed_ran_through_the_address(bound_stack: tuple[Path, str]) -> None:
    inventory, _ = bound_stack
    password = (inventory / "secrets" / "postgres_app_password").read_text().strip()
    with (
        psycopg2.connect(
            host=ADDRESS, port=PG_PORT, user="prism_app", password=password, dbname="prism", connect_timeout=5
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'orch\\_%'"
        )
        assert cur.fetchone()[0] == 7
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(
            host="127.0.0.1",
            port=PG_PORT,
            user="prism_app",
            password=password,
            dbname="prism",
            connect_timeout=3,
        )


def test_weaviate_seed_ran_through_the_address(bound_stack: tuple[Path, str]) -> None:
    inventory, _ = bound_stack
    key = (inventory / "secrets" / "weaviate_api_key").read_text().strip()
    answer = requests.post(
        f"http://{ADDRESS}:{WEAVIATE_PORT}/v1/graphql",
        json={"query": "{ Aggregate { ExternalKnowledge { meta { count } } } }"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    answer.raise_for_status()
    count = answer.json()["data"]["Aggregate"]["ExternalKnowledge"][0]["meta"]["count"]
    documents = len(list((ROOT / "files" / "knowledge").glob("*.yml")))
    assert count == documents > 0
