"""Backup runs on disk (plugins/module_utils/prism_backup.py): manifest, verification, run lookup and
retention, on real files in a temporary backup root."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible.module_utils.prism_backup import (
    MANIFEST,
    BackupError,
    build_manifest,
    list_runs,
    plan_retention,
    resolve_run,
    sha256_of,
    verify_run,
    write_json_atomic,
)

PARTS = {
    "postgres": {
        "tool": "pg_dump",
        "tool_version": "pg_dump (PostgreSQL) 17.6",
        "counted": {"rows": {"prism": {}}},
    },
    "redis": {"tool": "BGSAVE", "tool_version": "Redis server v=8.0.2", "counted": {"keys": {"db0": 2}}},
}


def make_run(root: Path, run_id: str, complete: bool = True) -> Path:
    run = root / run_id
    (run / "postgres").mkdir(parents=True)
    (run / "redis").mkdir()
    (run / "postgres" / "prism.dump").write_bytes(b"PGDMP" + run_id.encode() * 100)
    (run / "postgres" / "globals.sql").write_text("CREATE ROLE orch_app;\n")
    (run / "redis" / "dump.rdb").write_bytes(b"REDIS0012" + os.urandom(64))
    if complete:
        write_json_atomic(str(run / MANIFEST), build_manifest(str(run), run_id, PARTS, {"stack": "t"}))
    return run


def test_manifest_records_every_file_with_size_and_sha256(tmp_path: Path) -> None:
    run = make_run(tmp_path, "20261126T100000Z")
    manifest = json.loads((run / MANIFEST).read_text())
    assert manifest["status"] == "complete" and manifest["run_id"] == "20261126T100000Z"
    files = {f["file"]: f for part in manifest["parts"].values() for f in part["files"]}
    assert set(files) == {"postgres/prism.dump", "postgres/globals.sql", "redis/dump.rdb"}
    dump = run / "postgres" / "prism.dump"
    assert files["postgres/prism.dump"] == {
        "file": "postgres/prism.dump",
        "size": dump.stat().st_size,
        "sha256": sha256_of(str(dump)),
    }
    assert manifest["parts"]["redis"]["counted"] == {"keys": {"db0": 2}}
    assert manifest["parts"]["postgres"]["tool_version"] == "pg_dump (PostgreSQL) 17.6"


def test_a_part_without_files_is_an_error(tmp_path: Path) -> None:
    run = tmp_path / "20261126T100000Z"
    (run / "postgres").mkdir(parents=True)
    with pytest.raises(BackupError, match="Part 'postgres' has no files"):
        build_manifest(str(run), "20261126T100000Z", {"postgres": {}}, {})


def test_verify_passes_on_an_untouched_run(tmp_path: Path) -> None:
    make_run(tmp_path, "20261126T100000Z")
    run = resolve_run(str(tmp_path), "latest")
    assert verify_run(run, ["postgres", "redis"]) == []


def test_verify_names_a_corrupted_file_with_the_same_size(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "20261126T100000Z")
    dump = run_dir / "postgres" / "prism.dump"
    data = bytearray(dump.read_bytes())
    data[10] ^= 0xFF
    dump.write_bytes(bytes(data))
    problems = verify_run(resolve_run(str(tmp_path), "20261126T100000Z"))
    assert len(problems) == 1
    assert str(dump) in problems[0] and "sha256" in problems[0]


def test_verify_names_a_truncated_and_a_missing_file(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "20261126T100000Z")
    (run_dir / "redis" / "dump.rdb").unlink()
    (run_dir / "postgres" / "globals.sql").write_text("")
    problems = verify_run(resolve_run(str(tmp_path), "latest"))
    assert any("redis/dump.rdb: missing" in p for p in problems)
    assert any("globals.sql: size 0 bytes" in p for p in problems)


def test_verify_names_a_missing_part(tmp_path: Path) -> None:
    make_run(tmp_path, "20261126T100000Z")
    problems = verify_run(resolve_run(str(tmp_path), "latest"), ["postgres", "weaviate"])
    assert problems == [
        "Run 20261126T100000Z has no part 'weaviate' (its manifest lists: postgres, redis). "
        "Fix: choose a run that has it, or leave 'weaviate' out of backup_restore_parts."
    ]


def test_latest_is_the_newest_complete_run(tmp_path: Path) -> None:
    make_run(tmp_path, "20261126T100000Z")
    make_run(tmp_path, "20261126T110000Z")
    make_run(tmp_path, "20261126T120000Z", complete=False)
    (tmp_path / "not-a-run").mkdir()
    assert resolve_run(str(tmp_path), "latest").run_id == "20261126T110000Z"
    assert [r.run_id for r in list_runs(str(tmp_path))] == [
        "20261126T100000Z",
        "20261126T110000Z",
        "20261126T120000Z",
    ]


def test_unknown_and_incomplete_run_ids_are_refused_listing_the_good_ones(tmp_path: Path) -> None:
    make_run(tmp_path, "20261126T100000Z")
    make_run(tmp_path, "20261126T120000Z", complete=False)
    with pytest.raises(BackupError, match=r"Unknown run id 20261126T090000Z.*newest first: 20261126T100000Z"):
        resolve_run(str(tmp_path), "20261126T090000Z")
    with pytest.raises(BackupError, match="Run 20261126T120000Z .* is incomplete"):
        resolve_run(str(tmp_path), "20261126T120000Z")
    with pytest.raises(BackupError, match="is not of the form YYYYMMDDTHHMMSSZ"):
        resolve_run(str(tmp_path), "../etc")


def test_no_root_and_no_run_are_errors(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        resolve_run(str(tmp_path / "absent"), "latest")
    with pytest.raises(BackupError, match="holds no complete run"):
        resolve_run(str(tmp_path), "latest")


def _runs(tmp_path: Path, spec: dict[str, bool]) -> list:
    for run_id, complete in spec.items():
        make_run(tmp_path, run_id, complete)
    return list_runs(str(tmp_path))


def test_retention_keeps_the_newest_good_runs(tmp_path: Path) -> None:
    ids = [f"20261126T1{h}0000Z" for h in range(5)]
    runs = _runs(tmp_path, dict.fromkeys(ids, True))
    plan = plan_retention(runs, 2, dict.fromkeys(ids, True))
    assert plan.keep == ids[-2:] and plan.delete == ids[:-2]


def test_retention_never_deletes_the_only_good_run(tmp_path: Path) -> None:
    runs = _runs(
        tmp_path,
        {
            "20261126T100000Z": True,
            "20261126T110000Z": False,
            "20261126T120000Z": True,
            "20261126T130000Z": False,
        },
    )
    # 12:00 is complete but corrupted: only 10:00 is good. Newer failed runs do not push it out.
    good = {"20261126T100000Z": True, "20261126T120000Z": False}
    plan = plan_retention(runs, 1, good)
    assert plan.keep == ["20261126T100000Z", "20261126T110000Z", "20261126T120000Z", "20261126T130000Z"]
    assert plan.delete == []


def test_retention_prunes_failed_runs_older_than_the_newest_good_one(tmp_path: Path) -> None:
    runs = _runs(tmp_path, {"20261126T100000Z": False, "20261126T110000Z": True, "20261126T120000Z": False})
    plan = plan_retention(runs, 3, {"20261126T110000Z": True})
    assert plan.delete == ["20261126T100000Z"]
    assert plan.keep == ["20261126T110000Z", "20261126T120000Z"]


def test_retention_with_no_good_run_deletes_nothing(tmp_path: Path) -> None:
    runs = _runs(tmp_path, {"20261126T100000Z": False, "20261126T110000Z": True})
    assert plan_retention(runs, 1, {"20261126T110000Z": False}).delete == []


def test_retention_keep_must_be_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="at least 1"):
        plan_retention([], 0, {})
