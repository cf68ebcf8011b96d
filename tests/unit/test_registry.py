"""The service registry (roles/prism/vars/main/services.yml) is consistent with the project: each entry's role
exists with a preflight, its image is in the catalog, its seed task file and backup part exist, each published
port names the input that sets it and that input is a stack fact, and no two services share a container, an
alias or a default host port. Read as data (the Jinja in the values is not rendered)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PRISM = ROOT / "roles" / "prism"
REGISTRY = yaml.safe_load((PRISM / "vars" / "main" / "services.yml").read_text())["__prism_builtin_services"]
CATALOG = yaml.safe_load((PRISM / "vars" / "main" / "catalog.yml").read_text())["prism_image_catalog"]
FACTS = yaml.safe_load((PRISM / "defaults" / "main" / "services.yml").read_text())
FIELDS = {
    "role",
    "enabled",
    "container",
    "alias",
    "image",
    "ports",
    "memory",
    "scrape",
    "health",
    "placement",
}
BACKUP_OWN_PARTS = {"postgres", "redis", "kafka", "weaviate"}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_entry_is_complete_and_points_at_what_exists(name: str) -> None:
    entry = REGISTRY[name]
    assert set(entry) >= FIELDS, f"{name} lacks {FIELDS - set(entry)}"
    role = ROOT / "roles" / entry["role"]
    assert (role / "tasks" / "preflight.yml").is_file() and (role / "tasks" / "main.yml").is_file()
    assert entry["image"] in CATALOG
    if "seed" in entry:
        assert (role / "tasks" / entry["seed"]).is_file()
    if "backup" in entry:
        part = entry["backup"]
        own = part in BACKUP_OWN_PARTS and (ROOT / "roles" / "backup" / "tasks" / f"{part}.yml").is_file()
        assert own or (role / "tasks" / "backup.yml").is_file(), f"nothing backs up part {part}"
    assert entry["placement"]["mode"] in {"once", "every_host", "cluster"}
    assert set(entry["health"]) >= {"test", "interval", "timeout", "retries", "start_period"}
    for job in entry["scrape"]:
        assert any(port["container"] == job["port"] for port in entry["ports"].values()), (name, job)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_published_ports_name_their_input(name: str) -> None:
    for port_name, port in REGISTRY[name]["ports"].items():
        assert port["protocol"] in {"tcp", "udp"}
        assert isinstance(port["container"], int)
        if "host" in port:
            assert port["host"] == "{{ " + port["input"] + " }}", (name, port_name)
            assert isinstance(FACTS[port["input"]], int), f"{port['input']} is not a stack fact with a port"


def test_no_two_services_share_a_container_alias_or_default_port() -> None:
    containers = [e["container"] for e in REGISTRY.values()]
    aliases = [e["alias"] for e in REGISTRY.values()]
    ports = [FACTS[p["input"]] for e in REGISTRY.values() for p in e["ports"].values() if "host" in p]
    assert len(set(containers)) == len(containers)
    assert len(set(aliases)) == len(aliases)
    assert len(set(ports)) == len(ports), sorted(ports)


def test_the_stack_facts_the_registry_uses_exist() -> None:
    text = (PRISM / "vars" / "main" / "services.yml").read_text().split("__prism_builtin_services:")[1]
    used = set(re.findall(r"\{\{ ([a-z_]+) \}\}", text)) - {"prism_name_prefix"}
    assert used <= set(FACTS), used - set(FACTS)


def test_every_field_is_documented_at_the_head_of_the_registry() -> None:
    head = (PRISM / "vars" / "main" / "services.yml").read_text().split("prism_services:")[0]
    for field in sorted(FIELDS | {"seed", "backup"}):
        assert re.search(rf"^#   {field}\s", head, re.M), field
