"""The Kafka container's command, rendered from the role's vars as Ansible renders it: the image's CMD with
the JMX agent as a NAME=value argument of the run script, for either image source. Both images start from
that CMD (the catalog's contract; the built image's Dockerfile); the live agent is checked in Molecule
default (test_monitoring.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[2]


def render(expr: str, **inputs: Any) -> Any:
    role = {}
    for part in ("defaults", "vars"):
        role.update(yaml.safe_load((ROOT / f"roles/kafka/{part}/main.yml").read_text()))
    variables = {k: trust_as_template(v) if isinstance(v, str) else v for k, v in role.items()}
    variables |= {
        "prism_base_dir": "/opt/prism",
        "prism_services": {"kafka": {"ports": {"jmx": {"container": 9404}}}},
        "__kafka_jmx_pom": {"checksum": "0123456789abcdef0123"},
    } | inputs
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expr))


def catalog_command(image: str) -> str:
    catalog = yaml.safe_load((ROOT / "roles/prism/vars/main/catalog.yml").read_text())["prism_image_catalog"]
    return str(catalog[image]["contract"]["command"])


@pytest.mark.parametrize("source", ["upstream apache/kafka (registry, archive)", "built"])
def test_the_agent_is_an_argument_of_the_images_run_script(source: str) -> None:
    command = render("{{ __kafka_command }}", kafka_jmx_exporter_enabled=True)
    run = catalog_command("kafka") if source.startswith("upstream") else built_cmd()
    assert command[0] == run == "/etc/kafka/docker/run"
    assert command[1:] == [
        "KAFKA_OPTS=-javaagent:/opt/prism/jmx/lib/jmx_prometheus_javaagent-1.0.1.jar=9404:/opt/prism/jmx/kafka.yml"
    ]
    mounts = render("{{ __kafka_jmx_mounts }}", kafka_jmx_exporter_enabled=True)
    assert mounts == [
        {"type": "bind", "source": "/opt/prism/kafka/jmx", "target": "/opt/prism/jmx", "read_only": True}
    ]


def test_without_the_agent_the_command_is_the_images_cmd_and_nothing_is_mounted() -> None:
    assert render("{{ __kafka_command }}", kafka_jmx_exporter_enabled=False) == ["/etc/kafka/docker/run"]
    assert render("{{ __kafka_jmx_mounts }}", kafka_jmx_exporter_enabled=False) == []


def built_cmd() -> str:
    dockerfile = (ROOT / "files/images/kafka/Dockerfile").read_text()
    match = re.search(r'^CMD \["([^"]+)"\]$', dockerfile, re.M)
    assert match, "files/images/kafka/Dockerfile has no CMD"
    # The built run script exports its NAME=value arguments before anything else, as upstream's does.
    run = (ROOT / "files/images/kafka/docker/run").read_text()
    assert run.index('export "${assignment?}"') < run.index("kafka-storage.sh format")
    return match.group(1)
