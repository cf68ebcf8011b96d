"""Every module of plugins/modules renders with ansible-doc, its doc fragments resolved: what operators read
with `ansible-doc -M plugins/modules <name>` and what ansible-lint parses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("prism_*.py"))

# Options each module must show: its own and those its shared connection fragment brings.
EXPECTED_OPTIONS = {
    "prism_pg_schema": {"path", "history_table", "login_host", "login_password", "ssl_mode"},
    "prism_kafka_topics": {
        "topics",
        "purge_configs",
        "bootstrap_servers",
        "sasl_password",
        "security_protocol",
    },
    "prism_weaviate_knowledge": {
        "documents",
        "properties",
        "weaviate_api_key",
        "login_password",
        "remove_absent",
    },
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    home = tmp_path_factory.mktemp("ansible_doc")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(home / "none.cfg"),
        "ANSIBLE_LIBRARY": str(REPO_ROOT / "plugins" / "modules"),
        "ANSIBLE_MODULE_UTILS": str(REPO_ROOT / "plugins" / "module_utils"),
        "ANSIBLE_DOC_FRAGMENT_PLUGINS": str(REPO_ROOT / "plugins" / "doc_fragments"),
        "ANSIBLE_HOME": str(home / "ansible_home"),
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", "module", *MODULES],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    return {name: entry["doc"] for name, entry in yaml.safe_load(proc.stdout).items()}


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_module(rendered: dict[str, dict], module: str) -> None:
    doc = rendered[module]
    assert doc["module"] == module
    assert doc["short_description"]
    assert EXPECTED_OPTIONS.get(module, set()) <= set(doc.get("options") or {})


def test_every_module_is_rendered(rendered: dict[str, dict]) -> None:
    assert set(rendered) == set(MODULES) and len(MODULES) >= 3
