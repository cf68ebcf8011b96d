# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup runs on disk: the manifest (write and verify) and retention.

Layout under the backup root::

    <root>/<run_id>/manifest.json        written last: a run without it is incomplete
    <root>/<run_id>/<part>/<files...>    one directory per part (postgres, redis, kafka, weaviate)

A run id is the UTC start time, ``YYYYMMDDTHHMMSSZ``, so ids sort in time order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

MANIFEST = "manifest.json"
FORMAT = 1
RUN_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")
_CHUNK = 1024 * 1024


class BackupError(Exception):
    """A problem with a run on disk; the message names the run, part or file and the fix."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_run_id(run_id: str) -> None:
    if not RUN_ID_RE.match(run_id or ""):
        raise BackupError(
            f"Run id '{run_id}' is not of the form YYYYMMDDTHHMMSSZ (the UTC start time of a run, "
            "e.g. 20261126T131500Z). Fix: pass one of the run ids listed in the backup root, or none for the latest."
        )


def part_files(run_dir: str, part: str) -> list[dict[str, Any]]:
    """Every regular file of a part's directory, relative to the run directory, with size and sha256."""
    base = os.path.join(run_dir, part)
    if not os.path.isdir(base):
        raise BackupError(f"Part '{part}' has no directory {base}: its backup step wrote nothing.")
    files = []
    for directory, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(directory, name)
            files.append(
                {
                    "file": os.path.relpath(path, run_dir),
                    "size": os.path.getsize(path),
                    "sha256": sha256_of(path),
                }
            )
    if not files:
        raise BackupError(f"Part '{part}' has no files in {base}: its backup step wrote nothing.")
    return files


def build_manifest(run_dir: str, run_id: str, parts: dict[str, dict[str, Any]], info: dict[str, Any]) -> dict:
    """The manifest of a finished run: per part its tool, tool version, counts and files (size, sha256)."""
    check_run_id(run_id)
    manifest: dict[str, Any] = {"format": FORMAT, "run_id": run_id, "status": "complete"}
    manifest.update(info)
    manifest["parts"] = {}
    for name in sorted(parts):
        part = parts[name]
        manifest["parts"][name] = {
            "tool": part.get("tool", ""),
            "tool_version": part.get("tool_version", ""),
            "counted": part.get("counted", {}),
            "files": part_files(run_dir, name),
        }
    return manifest


def write_json_atomic(path: str, data: dict[str, Any]) -> None:
    """Write JSON so that a reader sees the old file or the whole new one, never half of it."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_manifest(run_dir: str) -> dict[str, Any] | None:
    """The run's manifest, or None when the run has none (incomplete) or it is unreadable."""
    try:
        with open(os.path.join(run_dir, MANIFEST)) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("status") != "complete"
        or not isinstance(data.get("parts"), dict)
    ):
        return None
    return data


@dataclass
class Run:
    run_id: str
    path: str
    manifest: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def complete(self) -> bool:
        return self.manifest is not None


def list_runs(root: str) -> list[Run]:
    """Runs under the backup root, oldest first. Entries whose name is not a run id are ignored."""
    if not os.path.isdir(root):
        raise BackupError(
            f"Backup root {root} does not exist on the host. Fix: set backup_root to the directory the backups "
            "were written to."
        )
    runs = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if RUN_ID_RE.match(name) and os.path.isdir(path):
            runs.append(Run(name, path, read_manifest(path)))
    return runs


def resolve_run(root: str, run_id: str) -> Run:
    """The run to restore: ``latest`` is the newest complete run."""
    runs = list_runs(root)
    complete = [run for run in runs if run.complete]
    available = ", ".join(run.run_id for run in reversed(complete)) or "none"
    if run_id in ("", "latest"):
        if not complete:
            raise BackupError(
                f"Backup root {root} holds no complete run (one with a {MANIFEST}). Run a backup first."
            )
        return complete[-1]
    check_run_id(run_id)
    for run in runs:
        if run.run_id == run_id:
            if not run.complete:
                raise BackupError(
                    f"Run {run_id} in {root} is incomplete: it has no valid {MANIFEST} (the backup failed or is "
                    f"still running). Complete runs, newest first: {available}."
                )
            return run
    raise BackupError(
        f"Unknown run id {run_id}: there is no such run in {root}. Complete runs, newest first: {available}. "
        "Fix: pass one of them as backup_run_id, or leave it unset for the latest."
    )


def verify_run(run: Run, parts: list[str] | None = None, checksums: bool = True) -> list[str]:
    """Problems of a complete run, each naming the part or file; empty when every file matches its manifest.

    ``parts``: the parts that must be present (None: those the manifest lists).
    """
    assert run.manifest is not None
    problems = []
    listed = run.manifest["parts"]
    for part in parts if parts is not None else sorted(listed):
        if part not in listed:
            problems.append(
                f"Run {run.run_id} has no part '{part}' (its manifest lists: {', '.join(sorted(listed)) or 'none'}). "
                f"Fix: choose a run that has it, or leave '{part}' out of backup_restore_parts."
            )
            continue
        for entry in listed[part].get("files", []):
            path = os.path.join(run.path, entry["file"])
            if not os.path.isfile(path):
                problems.append(f"{path}: missing (part '{part}' of run {run.run_id}).")
                continue
            size = os.path.getsize(path)
            if size != entry["size"]:
                problems.append(
                    f"{path}: size {size} bytes, the manifest says {entry['size']} (part '{part}' of run "
                    f"{run.run_id}): the file was changed or truncated after the backup."
                )
                continue
            if checksums:
                actual = sha256_of(path)
                if actual != entry["sha256"]:
                    problems.append(
                        f"{path}: sha256 {actual}, the manifest says {entry['sha256']} (part '{part}' of run "
                        f"{run.run_id}): the file was changed or corrupted after the backup."
                    )
    return problems


@dataclass
class RetentionPlan:
    keep: list[str]
    delete: list[str]
    reasons: dict[str, str]


def plan_retention(runs: list[Run], keep: int, good: dict[str, bool]) -> RetentionPlan:
    """Which runs to delete so that the ``keep`` newest good runs stay.

    ``good``: per complete run id, whether it verified. Rules:
    - the ``keep`` newest good runs stay; older good runs go;
    - a run that is not good (incomplete, or failed verification) goes only when it is older than the newest
      good run: a newer one may still be running, or be the evidence of the last failure;
    - with no good run at all nothing is deleted, so the only good backup can never be pruned.
    """
    if keep < 1:
        raise BackupError(
            f"backup_retention_keep is {keep}; it must be at least 1 (the newest good run always stays)."
        )
    good_ids = [run.run_id for run in runs if good.get(run.run_id)]
    if not good_ids:
        return RetentionPlan(
            [run.run_id for run in runs], [], {run.run_id: "kept: no good run exists" for run in runs}
        )
    kept_good = set(good_ids[-keep:])
    newest_good = good_ids[-1]
    keep_ids, delete_ids, reasons = [], [], {}
    for run in runs:
        if run.run_id in kept_good:
            keep_ids.append(run.run_id)
            reasons[run.run_id] = f"kept: one of the {keep} newest good runs"
        elif good.get(run.run_id):
            delete_ids.append(run.run_id)
            reasons[run.run_id] = f"deleted: older than the {keep} newest good runs"
        elif run.run_id < newest_good:
            delete_ids.append(run.run_id)
            reasons[run.run_id] = "deleted: incomplete or failed, older than the newest good run"
        else:
            keep_ids.append(run.run_id)
            reasons[run.run_id] = "kept: incomplete or failed, newer than the newest good run"
    return RetentionPlan(keep_ids, delete_ids, reasons)


def delete_run(root: str, run_id: str) -> None:
    check_run_id(run_id)
    shutil.rmtree(os.path.join(root, run_id))
