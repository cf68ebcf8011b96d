"""The service registry: a test service (tests/roles/prism_probe plus the one entry in
tests/registry_probe.yml, deployed by this scenario's converge) appears in every list of services without
any other edit: preflight, the hardware preflight, seed, the status table, Prometheus's targets, verify and
backup (the real run of the drift cycle, conftest.py's `drift`, is the evidence for the first four). Also the
stack-level preflight's bad inputs, each refused before anything changes."""

from __future__ import annotations

import json
import re

import pytest
import requests
from conftest import PREFIX, inspect, run_playbook

PROMETHEUS = "http://127.0.0.1:19090"
PROBE = f"{PREFIX}_probe"
BACKUP_ROOT = "/opt/prism-molecule/backups"


def test_probe_runs_healthy_with_its_registry_facts(host):
    c = inspect(host, PROBE)
    assert c["State"]["Health"]["Status"] == "healthy"
    assert c["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert c["Config"]["Labels"]["org.prism.service"] == "probe"
    aliases = next(iter(c["NetworkSettings"]["Networks"].values()))["Aliases"]
    assert "probe" in aliases
    assert c["HostConfig"]["PortBindings"] in ({}, None)


def test_probe_in_preflight(drift):
    rerun = drift.repair
    assert re.search(r"TASK \[prism_probe : Preflight \| Check the prism_probe inputs\]", rerun.output)
    assert "prism_probe preflight ran" in rerun.output


def test_probe_in_the_hardware_preflight(drift):
    rerun = drift.repair
    line = re.search(r"services need [0-9.]+ GiB \((.*?)\);", rerun.output, re.S)
    assert line, rerun.output[-4000:]
    assert "probe 64m" in " ".join(line.group(1).split())


def test_probe_in_seed(drift, host):
    rerun = drift.repair
    assert re.search(r"TASK \[prism_probe : Seed \| Marker file\]", rerun.output)
    assert host.file("/opt/prism-molecule/probe/seeded").content_string.strip() == "registered"


def test_probe_in_the_status_table(drift):
    rerun = drift.repair
    table = rerun.output[rerun.output.rindex("SERVICE") :]
    row = next(line for line in table.splitlines() if line.strip().startswith("probe "))
    assert "healthy" in row and "node_exporter" in row


def test_status_table_columns_fit_their_content(drift):
    lines = drift.repair.output.splitlines()
    top = max(i for i, line in enumerate(lines) if "SERVICE" in line and "ADDRESS" in line)
    header = lines[top]
    starts = [header.index(col) for col in ("IMAGE", "SOURCE", "HEALTH", "ADDRESS")]
    rows = [line for line in lines[top + 1 :] if re.match(r"\s+[a-z_]+\s{2,}", line)]
    assert len(rows) >= 10
    for line in rows:
        # Every cell starts under its heading, preceded by at least two blanks: no cell overflows.
        for start in starts:
            assert line[start - 2 : start] == "  " and line[start] != " ", (line, start)


def test_probe_is_a_prometheus_target():
    targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    probe = [t for t in targets if t["labels"]["job"] == "probe"]
    assert [t["scrapeUrl"] for t in probe] == ["http://probe:9100/metrics"]
    assert probe[0]["health"] == "up", probe[0]["lastError"]


def test_probe_in_verify():
    result = run_playbook(
        "-e", json.dumps({"verify_checks": ["postgresql_basic"]}), playbook="playbooks/verify.yml"
    )
    assert result.rc == 0, result.output[-4000:]
    assert re.search(r"^\s*probe\s+healthy$", result.output, re.M), result.output[-4000:]


def test_probe_in_backup(host):
    result = run_playbook("-e", json.dumps({"backup_parts": ["probe"]}), playbook="playbooks/backup.yml")
    assert result.rc == 0, result.output[-4000:]
    run_id = re.search(r"Backup run (\d{8}T\d{6}Z) complete", result.output).group(1)
    try:
        manifest = json.loads(host.file(f"{BACKUP_ROOT}/{run_id}/manifest.json").content_string)
        assert list(manifest["parts"]) == ["probe"]
        assert [f["file"] for f in manifest["parts"]["probe"]["files"]] == ["probe/seeded"]
        assert manifest["parts"]["probe"]["tool"] == "prism_probe tasks/backup.yml"
    finally:
        host.run(f"rm -rf {BACKUP_ROOT}/{run_id}")


# Stack-level bad input: refused by the first play before anything changes, every problem at once, each
# sentence naming the variable. Two runs: the inputs, then the hardware (checked after the inputs pass).
BAD_INPUTS = {
    "prism_bind_address": "127.0.0.300",
    "prism_name_prefix": "Prism-Mol",
    "redis_port": 15432,
    "weaviate_grpc_port": 70000,
    "prism_image_sources": {"postgress": "build", "redisinsight": "build"},
    "prism_services_extra": {"half": {"role": "prism_probe"}},
}
BAD_INPUT_SENTENCES = [
    "prism_bind_address ('127.0.0.300') must be an IPv4 or IPv6 address",
    "prism_name_prefix ('Prism-Mol') must be lower-case letters",
    "redis_port (15432) is also the port of postgres_port",
    "weaviate_grpc_port (70000) must be a port number 1-65535",
    "prism_image_sources.postgress names no image of the catalog",
    "redisinsight has no build recipe here; set prism_image_sources.redisinsight to registry or archive",
    "Service 'half' of the registry (prism_services_extra?) lacks enabled, container",
]
TOO_SMALL = {"prism_hardware_check": "fail", "prism_min_free_disk_gb": 1000000, "kafka_memory": "1000g"}
TOO_SMALL_SENTENCES = [
    "is too small for the services placed on it",
    "memory limits add up to",
    "prism_min_free_disk_gb (1000000)",
]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [(BAD_INPUTS, BAD_INPUT_SENTENCES), (TOO_SMALL, TOO_SMALL_SENTENCES)],
    ids=["inputs", "hardware"],
)
def test_stack_preflight_refuses_bad_input(host, extra, expected):
    before = {name: inspect(host, name)["State"]["StartedAt"] for name in (f"{PREFIX}_postgres", PROBE)}
    # The probe's extra vars come first; this run's prism_services_extra replaces them where it is set.
    result = run_playbook("-e", json.dumps(extra))
    assert result.rc != 0
    flat = " ".join(result.output.split())
    for text in expected:
        assert text in flat, result.output[-3000:]
    assert "PLAY [Docker host" not in result.output and "PLAY [Services" not in result.output
    assert {name: inspect(host, name)["State"]["StartedAt"] for name in before} == before


def test_a_required_image_without_its_archive_is_refused_before_any_container_changes(host):
    """The image step's own bad input (roles/prism/tasks/images.yml): the archive is looked for on the host,
    so the preflight cannot; the run stops at the images, naming the input and the fix."""
    name = f"{PREFIX}_postgres"
    before = inspect(host, name)["State"]["StartedAt"]
    result = run_playbook("-e", json.dumps({"prism_image_sources": {"postgres": "archive"}}))
    assert result.rc != 0
    flat = " ".join(result.output.split())
    assert "prism_image_sources.postgres is 'archive' but" in flat, result.output[-3000:]
    assert "Fix: create it with `docker save postgres:17 -o postgres-17.tar`" in flat
    assert "TASK [prism : Containers |" not in result.output
    assert inspect(host, name)["State"]["StartedAt"] == before
