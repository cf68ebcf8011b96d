"""The built cAdvisor is cAdvisor's own code at the catalog's version: files/images/cadvisor/go.mod requires
its library and its Docker support at exactly prism_image_catalog.cadvisor.version, go.sum pins both, and
main.go wires the library's manager, Prometheus collector and the Docker provider. The binary itself is
built and run against the live engine in Molecule default (test_monitoring.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = ROOT / "files" / "images" / "cadvisor"
CATALOG = yaml.safe_load((ROOT / "roles/prism/vars/main/catalog.yml").read_text())["prism_image_catalog"]
VERSION = CATALOG["cadvisor"]["version"]


def required(module: str) -> str:
    found = re.findall(
        rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", (CONTEXT / "go.mod").read_text(), re.M
    )
    assert len(found) == 1, f"{module} is required {len(found)} times in go.mod"
    return found[0]


@pytest.mark.parametrize("module", ["github.com/google/cadvisor", "github.com/google/cadvisor/lib"])
def test_go_mod_requires_cadvisor_at_the_catalog_version(module: str) -> None:
    assert required(module) == f"v{VERSION}", f"go.mod's {module} and the catalog's cadvisor.version disagree"
    sums = (CONTEXT / "go.sum").read_text()
    assert f"{module} v{VERSION} h1:" in sums, f"go.sum does not pin {module} v{VERSION}: run go mod tidy"


def test_the_catalog_version_is_the_upstream_tag() -> None:
    assert CATALOG["cadvisor"]["upstream"].endswith(f":v{VERSION}")


def test_main_uses_the_library_not_a_copy_of_it() -> None:
    main = (CONTEXT / "main.go").read_text()
    for package in (
        "github.com/google/cadvisor/lib/manager",
        "github.com/google/cadvisor/lib/metrics",
        "github.com/google/cadvisor/container/docker/install",
    ):
        assert f'"{package}"' in main, package
