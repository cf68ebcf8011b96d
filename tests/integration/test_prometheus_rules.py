"""The PRISM alert rules (roles/prometheus/files/rules/) against their promtool unit tests, with the promtool of
the project's Prometheus image (the same binary the role validates its config with). The image is the
newest local one labelled org.prism.image.service=prometheus (built or loaded by a deploy, e.g. Molecule),
or $PRISM_TEST_PROMETHEUS_IMAGE."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import docker
import docker.errors
import pytest

RULES = Path(__file__).resolve().parents[2] / "roles" / "prometheus" / "files" / "rules"
LABEL = "org.prism.image.service=prometheus"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def promtool():
    client = docker.from_env()
    image = os.environ.get("PRISM_TEST_PROMETHEUS_IMAGE")
    if not image:
        labelled = [i for i in client.images.list(filters={"label": LABEL}) if i.tags]
        if not labelled:
            pytest.fail(
                f"no Prometheus image (label {LABEL}): deploy once (make molecule) or set PRISM_TEST_PROMETHEUS_IMAGE"
            )
        image = max(labelled, key=lambda i: i.attrs["Created"]).tags[0]

    def run(directory: Path, *args: str) -> tuple[int, str]:
        container = client.containers.run(
            image,
            entrypoint="/bin/promtool",
            command=list(args),
            volumes={str(directory): {"bind": "/rules", "mode": "ro"}},
            working_dir="/rules/tests",
            network_mode="none",
            user="0:0",
            detach=True,
        )
        try:
            rc = container.wait(timeout=120)["StatusCode"]
            return rc, container.logs().decode()
        finally:
            container.remove(force=True, v=True)

    yield run
    client.close()


def test_rules_are_valid(promtool):
    rc, out = promtool(RULES, "check", "rules", "/rules/prism.rules.yml")
    assert rc == 0, out
    assert "SUCCESS" in out


def test_every_alert_has_a_passing_unit_test(promtool):
    rc, out = promtool(RULES, "test", "rules", "prism.rules.test.yml")
    assert rc == 0, out
    tests = (RULES / "tests" / "prism.rules.test.yml").read_text()
    rules = (RULES / "prism.rules.yml").read_text()
    alerts = [
        line.split(":", 1)[1].strip() for line in rules.splitlines() if line.strip().startswith("- alert:")
    ]
    assert len(alerts) >= 16
    untested = [a for a in alerts if f"alertname: {a}\n" not in tests]
    assert not untested, f"alerts without a promtool test: {untested}"


def test_a_wrong_expectation_fails(promtool, tmp_path):
    """The unit tests can fail: the same suite with one expected annotation changed does."""
    shutil.copytree(RULES, tmp_path / "rules")
    test_file = tmp_path / "rules" / "tests" / "prism.rules.test.yml"
    test_file.write_text(
        test_file.read_text().replace("redis_exporter:9121 is down", "redis_exporter:9121 is fine", 1)
    )
    rc, out = promtool(tmp_path / "rules", "test", "rules", "prism.rules.test.yml")
    assert rc != 0 and "FAILED" in out, out
