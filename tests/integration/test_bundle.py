"""The image bundle: playbooks/bundle.yml writes the images of an inventory from this machine's engine into a
directory with a manifest, and source "archive" with prism_image_bundle copies, checks and loads what a host
lacks (roles/prism/tasks/images.yml), refusing a bundle that misses an image or whose file differs.

The inventory places node_exporter alone (prism_service_groups puts every other service on a group it does not
have), plus Redis Insight, an optional image that this machine may have no source for. The "host" is this
machine: to make it lack node_exporter's image, its tag is removed while a second tag keeps the layers, and put
back afterwards. The image must be here already (Molecule or `make deploy` built it)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from conftest import run_playbook, write_inventory

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IMAGES_PLAYBOOK = ROOT / "tests" / "integration" / "playbooks" / "images.yml"
KEEP = {"node_exporter", "redisinsight"}
REDISINSIGHT = "redis/redisinsight:2.70.1"


def _changed(result: subprocess.CompletedProcess[str]) -> int:
    found = re.findall(r"changed=(\d+)", result.stdout)
    assert found, result.stdout[-3000:] + result.stderr[-2000:]
    return sum(int(n) for n in found)


def _flat(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join((result.stdout + result.stderr).split())


def _inventory(base: Path, bundle: Path, archive: Path) -> Path:
    return write_inventory(
        base / "inventory",
        {"bundlehost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        KEEP,
        {
            "prism_environment": "bundle",
            "prism_secrets_dir": str(base / "secrets"),
            "prism_image_source": "archive",
            "prism_image_bundle": str(bundle),
            "prism_image_archive_dir": str(archive),
            "prism_hardware_check": "warn",
            "admin_ui_redisinsight_enabled": True,
            "admin_ui_skip_unavailable": True,
        },
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("bundle")
    directory = base / "bundle"
    inventory = _inventory(base, directory, base / "archive")
    first = run_playbook(inventory, ROOT / "playbooks" / "bundle.yml", timeout=900)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    again = run_playbook(inventory, ROOT / "playbooks" / "bundle.yml", timeout=900)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]
    manifest = json.loads((directory / "manifest.json").read_text())
    return {"base": base, "dir": directory, "manifest": manifest, "first": first, "again": again}


@pytest.fixture
def lacking(client: docker.DockerClient, bundle: dict[str, Any]) -> Iterator[str]:
    """node_exporter's ref removed from the engine (a second tag keeps its layers), put back afterwards."""
    ref = bundle["manifest"]["images"]["node_exporter"]["ref"]
    keep = f"prism-bundle-test/keep:{uuid.uuid4().hex[:8]}"
    repository, tag = keep.split(":")
    client.images.get(ref).tag(repository, tag)
    client.images.remove(ref)
    try:
        yield ref
    finally:
        client.images.get(keep).tag(*ref.rsplit(":", 1))
        client.images.remove(keep)


def _has(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_the_bundle_holds_each_image_with_its_id_and_checksum(
    client: docker.DockerClient, bundle: dict[str, Any]
) -> None:
    entry = bundle["manifest"]["images"]["node_exporter"]
    path = bundle["dir"] / entry["file"]
    image = client.images.get(entry["ref"])
    print(f"node_exporter: {entry['ref']} {entry['size'] / 1048576:.1f} MiB in {path.name}")
    assert bundle["manifest"]["format"] == 1
    assert entry["ref"].startswith("prism/node_exporter:"), entry
    assert entry["id"] == image.id
    assert entry["services"] == ["node_exporter"]
    assert entry["sha256"] == _sha256(path)
    assert entry["size"] == path.stat().st_size
    with tarfile.open(path) as tar:
        saved = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert saved[0]["RepoTags"] == [entry["ref"]]
    assert _changed(bundle["first"]) > 0
    assert _changed(bundle["again"]) == 0, "a second bundle run wrote something again"


def test_an_optional_image_this_machine_lacks_is_left_out_and_named(
    client: docker.DockerClient, bundle: dict[str, Any]
) -> None:
    images = bundle["manifest"]["images"]
    if _has(client, REDISINSIGHT):
        assert images["redisinsight"]["ref"] == REDISINSIGHT
    else:
        print(
            f"redisinsight: not run here ({REDISINSIGHT} has no source on this machine); left out of the bundle"
        )
        assert "redisinsight" not in images
        assert "Not in it (optional" in _flat(bundle["first"]) and "redisinsight" in _flat(bundle["first"])


def test_a_host_that_lacks_an_image_gets_it_from_the_bundle_once(
    client: docker.DockerClient, bundle: dict[str, Any], lacking: str, tmp_path: Path
) -> None:
    entry = bundle["manifest"]["images"]["node_exporter"]
    archive = tmp_path / "archive"
    inventory = _inventory(tmp_path, bundle["dir"], archive)
    out = tmp_path / "images.json"

    check = run_playbook(inventory, IMAGES_PLAYBOOK, "--check", "--diff", "-e", f"images_out={out}")
    assert check.returncode == 0, check.stdout[-4000:] + check.stderr[-2000:]
    assert "node_exporter: node_exporter.tar" in check.stdout
    assert not _has(client, lacking), "--check loaded the image"
    assert not (archive / entry["file"]).exists(), "--check copied the file"

    first = run_playbook(inventory, IMAGES_PLAYBOOK, "-e", f"images_out={out}")
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert client.images.get(lacking).id == entry["id"]
    assert _sha256(archive / entry["file"]) == entry["sha256"]
    images = json.loads(out.read_text())
    assert images["node_exporter"] == {
        "service": "node_exporter",
        "image": "node_exporter",
        "source": "archive",
        "ref": entry["ref"],
    }
    if "redisinsight" not in bundle["manifest"]["images"]:
        assert images["redisinsight"]["ref"] == "", images["redisinsight"]
    assert _changed(first) > 0

    again = run_playbook(inventory, IMAGES_PLAYBOOK, "-e", f"images_out={out}")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]
    assert _changed(again) == 0, again.stdout[-4000:]
    copy = again.stdout.split("Bundle, copy the files of the missing images to the host")[1].split("TASK")[0]
    assert "skipping" in copy and "node_exporter.tar" not in copy, copy


def test_a_file_that_differs_from_the_manifest_is_refused(
    client: docker.DockerClient, bundle: dict[str, Any], lacking: str, tmp_path: Path
) -> None:
    entry = bundle["manifest"]["images"]["node_exporter"]
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    shutil.copy(bundle["dir"] / "manifest.json", damaged / "manifest.json")
    shutil.copy(bundle["dir"] / entry["file"], damaged / entry["file"])
    with (damaged / entry["file"]).open("r+b") as f:
        f.seek(entry["size"] // 2)
        byte = f.read(1)
        f.seek(entry["size"] // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    archive = tmp_path / "archive"
    inventory = _inventory(tmp_path, damaged, archive)

    result = run_playbook(inventory, IMAGES_PLAYBOOK, "-e", f"images_out={tmp_path / 'images.json'}")
    assert result.returncode != 0
    flat = _flat(result)
    assert (
        f"The bundle {damaged} does not match its manifest: {damaged / entry['file']} has sha256" in flat
    ), flat[-3000:]
    assert f"the manifest says {entry['sha256']}" in flat
    assert "Nothing of it was copied or loaded" in flat
    assert not _has(client, lacking), "a damaged file was loaded"
    assert not (archive / entry["file"]).exists(), "a damaged file was copied"


def test_a_bundle_that_lacks_an_image_or_its_manifest_is_refused(
    client: docker.DockerClient, bundle: dict[str, Any], lacking: str, tmp_path: Path
) -> None:
    short = tmp_path / "short"
    short.mkdir()
    manifest = json.loads(json.dumps(bundle["manifest"]))
    del manifest["images"]["node_exporter"]
    (short / "manifest.json").write_text(json.dumps(manifest))
    result = run_playbook(
        _inventory(tmp_path / "a", short, tmp_path / "archive"), IMAGES_PLAYBOOK, "-e", "images_out=/dev/null"
    )
    assert result.returncode != 0
    flat = _flat(result)
    assert (
        f"The bundle {short} lacks node_exporter (manifest.json), which bundlehost takes from it" in flat
    ), flat[-3000:]
    assert "playbooks/bundle.yml" in flat

    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_playbook(
        _inventory(tmp_path / "b", empty, tmp_path / "archive"), IMAGES_PLAYBOOK, "-e", "images_out=/dev/null"
    )
    assert result.returncode != 0
    assert f"prism_image_bundle: {empty}/manifest.json does not exist on the controller" in _flat(result)
    assert not _has(client, lacking)
    assert not (tmp_path / "archive").exists()
