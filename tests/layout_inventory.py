"""An inventory of several hosts, all of them this machine (connection local), run through
tests/unit/playbooks/layout.yml: site.yml's preflight of the stack, Kafka and Prometheus, then what the layout
renders for each host (JSON, one file per host). Used by tests/unit/test_layout.py and by the integration tests
that run what it renders (tests/integration/test_alertmanager_cluster.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "inventories" / "cluster"
PLAYBOOK = ROOT / "tests" / "unit" / "playbooks" / "layout.yml"
HOSTS = ["prism-a.plant.internal", "prism-b.plant.internal", "prism-c.plant.internal"]
ADDRESS = {
    "prism-a.plant.internal": "10.20.0.11",
    "prism-b.plant.internal": "10.20.0.12",
    "prism-c.plant.internal": "10.20.0.13",
}


def cluster_inventory() -> tuple[dict[str, Any], dict[str, Any]]:
    """inventories/cluster's hosts.yml and its group_vars/all, merged, as data to change per case."""
    hosts = yaml.safe_load((CLUSTER / "hosts.yml").read_text())
    group_vars: dict[str, Any] = {}
    for path in sorted((CLUSTER / "group_vars" / "all").glob("*.yml")):
        group_vars |= yaml.safe_load(path.read_text())
    return hosts, group_vars


def run(
    tmp_path: Path, hosts: dict[str, Any], group_vars: dict[str, Any]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The layout playbook on this inventory, every host local; returns the run and the directory of its output."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (inventory / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(group_vars))
    out = tmp_path / "out"
    out.mkdir()
    local = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
        # Secrets generated into the test's own directory (the inventory's vault is not here), no data recorded.
        "prism_secrets_generate": True,
        "prism_secrets_dir": str(tmp_path / "secrets"),
        "prism_base_dir": str(tmp_path / "base"),
        "prism_hardware_check": "warn",
        "layout_out": str(out),
    }
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(PLAYBOOK),
            "-i",
            str(inventory),
            "-e",
            json.dumps(local),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc, out


def rendered(out: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
