"""A control node as a plant has it: Debian trixie with Debian's own Python 3.13, set up by `make bootstrap`.

A throwaway container from the project's Debian base image (prism/debian:<suite>-<hash>, made by
roles/prism/tasks/build.yml with debootstrap and `docker import`; nothing is pulled) gets only what a fresh
host has or the README asks for: python3 and make from apt (plain http). The project is copied in, and
`make bootstrap` must do the rest itself, including the python3.13-venv package that a fresh Debian lacks.
PyPI is reached through the host's TLS-intercepting proxy, so the host's CA bundle goes in as SSL_CERT_FILE:
the documented input of scripts/bootstrap.sh that a plant behind such a proxy uses too. The uv and pip
download caches are the host's (.cache/), so only the first run downloads the 3.13 wheels.

Run time on this 2-core machine under load: about 1.5 minutes warm (apt, the bootstrap, the unit tests on
3.13), about 3 minutes when the uv cache has no 3.13 wheels yet.
"""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_REPOSITORY = "prism/debian"
SUITE = "trixie"
WORKDIR = "/srv/prism"
CA_IN_CONTAINER = "/etc/prism/ca-bundle.pem"
# Not copied into the container: the host's environment, caches, secrets and state.
EXCLUDED_TOP = {".git", ".venv", ".cache", ".secrets", ".molecule", ".build", "backups"}
EXCLUDED_ANY = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
STEP_TIMEOUT_S = 900


def find_base_image(client: docker.DockerClient) -> str:
    """$PRISM_TEST_BASE_IMAGE, else the newest local prism/debian:trixie-<hash> that base.yml imported."""
    wanted = os.environ.get("PRISM_TEST_BASE_IMAGE")
    if wanted:
        try:
            client.images.get(wanted)
        except docker.errors.ImageNotFound:
            pytest.fail(f"PRISM_TEST_BASE_IMAGE={wanted} is not a local image: build or load it first.")
        return wanted
    prefix = f"{BASE_REPOSITORY}:{SUITE}-"
    candidates = [
        (image.attrs["Created"], tag)
        for image in client.images.list(name=BASE_REPOSITORY)
        for tag in image.tags
        if tag.startswith(prefix)
    ]
    if not candidates:
        pytest.fail(
            f"no Debian base image {prefix}<hash>: it is made by the first build-mode image of a deploy "
            "(`make deploy`, or `make molecule`; roles/prism/tasks/build.yml, debootstrap + docker import). "
            "Looked for $PRISM_TEST_BASE_IMAGE and local tags of " + BASE_REPOSITORY + "."
        )
    return max(candidates)[1]


def host_ca_bundle() -> Path:
    """The CA bundle the host trusts (its proxy's CA included): $SSL_CERT_FILE or Debian's bundle."""
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if not bundle.is_file():
        pytest.fail(f"no CA bundle at {bundle}: set SSL_CERT_FILE to the PEM bundle this host trusts.")
    return bundle


def project_archive() -> bytes:
    """The working tree (not a commit: what is being tested), less the host's own environment."""

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        if len(parts) > 1 and parts[1] in EXCLUDED_TOP:
            return None
        if EXCLUDED_ANY.intersection(parts):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(REPO_ROOT, arcname=Path(WORKDIR).name, filter=keep)
    return buffer.getvalue()


@dataclass
class Result:
    rc: int
    output: str


@dataclass
class ControlNode:
    container: Any
    bootstrap: Result

    def run(self, command: str, env: dict[str, str] | None = None) -> Result:
        rc, output = self.container.exec_run(
            ["timeout", str(STEP_TIMEOUT_S), "bash", "-c", command],
            workdir=WORKDIR,
            environment=env or {},
        )
        return Result(rc, output.decode(errors="replace"))


@pytest.fixture(scope="module")
def control_node() -> Iterator[ControlNode]:
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"Docker engine not reachable ({exc}): start dockerd first (make engine).")
    image = find_base_image(client)
    cache = Path(os.environ.get("UV_CACHE_DIR") or REPO_ROOT / ".cache" / "uv")
    pip_cache = REPO_ROOT / ".cache" / "pip"
    cache.mkdir(parents=True, exist_ok=True)
    pip_cache.mkdir(parents=True, exist_ok=True)
    container = client.containers.run(
        image,
        ["sleep", "infinity"],
        detach=True,
        name=f"prism-test-control-node-{secrets.token_hex(4)}",
        volumes={
            str(host_ca_bundle()): {"bind": CA_IN_CONTAINER, "mode": "ro"},
            str(cache): {"bind": "/cache/uv", "mode": "rw"},
            str(pip_cache): {"bind": "/cache/pip", "mode": "rw"},
        },
        mem_limit="2g",
        labels={"org.prism.test": "control_node_bootstrap"},
    )
    try:
        container.exec_run(["mkdir", "-p", str(Path(WORKDIR).parent)])
        container.put_archive(str(Path(WORKDIR).parent), project_archive())
        node = ControlNode(container=container, bootstrap=Result(-1, ""))
        apt = node.run(
            "apt-get update -qq && apt-get install -y -qq python3 make >/dev/null",
            {"DEBIAN_FRONTEND": "noninteractive"},
        )
        assert apt.rc == 0, f"apt-get in {image} failed:\n{apt.output[-3000:]}"
        fresh = node.run("python3 -c 'import ensurepip'")
        assert fresh.rc != 0, f"{image} with Debian's python3 already has ensurepip: not a fresh host"
        node.bootstrap = node.run(
            "make bootstrap",
            {
                "SSL_CERT_FILE": CA_IN_CONTAINER,
                "UV_CACHE_DIR": "/cache/uv",
                "PIP_CACHE_DIR": "/cache/pip",
                # The cache is another file system than .venv: copy instead of failing to hard-link.
                "UV_LINK_MODE": "copy",
            },
        )
        yield node
    finally:
        container.remove(force=True, v=True)
        client.close()


def test_bootstrap_installs_what_a_fresh_debian_lacks(control_node: ControlNode) -> None:
    boot = control_node.bootstrap
    assert boot.rc == 0, f"make bootstrap failed (rc={boot.rc}):\n{boot.output[-4000:]}"
    assert "installing python3.13-venv" in boot.output, boot.output[-2000:]
    assert "(Python 3.13)" in boot.output, boot.output[-2000:]


def test_ansible_runs_on_debian_python_313(control_node: ControlNode) -> None:
    assert control_node.bootstrap.rc == 0, "make bootstrap failed; see the test above"
    version = control_node.run(".venv/bin/ansible-playbook --version")
    assert version.rc == 0, version.output
    assert "core 2.19.14" in version.output, version.output
    python_line = next(line for line in version.output.splitlines() if "python version" in line)
    assert "python version = 3.13" in python_line and "/srv/prism/.venv/bin/python" in python_line, (
        python_line
    )
    # The client libraries of the modules (binary wheels among them) import on 3.13.
    imports = control_node.run(".venv/bin/python -c 'import docker, psycopg2, kafka, redis, weaviate, yaml'")
    assert imports.rc == 0, imports.output


def test_site_syntax_check_on_python_313(control_node: ControlNode) -> None:
    assert control_node.bootstrap.rc == 0, "make bootstrap failed; see the test above"
    check = control_node.run(".venv/bin/ansible-playbook site.yml -i inventories/dev --syntax-check")
    assert check.rc == 0, check.output
    assert "playbook: site.yml" in check.output, check.output


def test_unit_tests_pass_on_python_313(control_node: ControlNode) -> None:
    assert control_node.bootstrap.rc == 0, "make bootstrap failed; see the test above"
    unit = control_node.run(".venv/bin/pytest -q -p no:cacheprovider tests/unit")
    assert unit.rc == 0, unit.output[-4000:]
    assert " passed" in unit.output.splitlines()[-1], unit.output[-1000:]
