"""The restore drill of issue #8, in order: write known data, back up, the bad inputs (each refused with a
clear message and nothing changed), destroy the data volumes, converge, restore, compare, then a corrupted
file that the restore must refuse naming it. Then the schedule's wrapper, its log line and the metric.

The tests share the stack's state and run in file order; each later step needs the earlier ones.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import (
    BACKUP_ROOT,
    COLLECTION,
    PREFIX,
    ROOT,
    TEXTFILE,
    kafka_admin,
    pg_connect,
    redis_cli,
    run_playbook,
    runs,
    snapshot,
    weaviate,
)
from kafka.admin import ConfigResource, ConfigResourceType

BACKUP = "playbooks/backup.yml"
RESTORE = "playbooks/restore.yml"
CHANGED_TOPIC, CHANGED_KEY, CHANGED_VALUE = "orch.analysis.results", "retention.ms", "123456789"
STATE: dict[str, object] = {}


@contextmanager
def tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A small tmpfs at path: a full (size=...) or read-only (ro) disk for the backup root."""
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
        if created:
            path.rmdir()


def metric(name: str) -> str | None:
    for line in TEXTFILE.read_text().splitlines():
        if line.startswith(name + " "):
            return line.split()[1]
    return None


def test_write_known_data():
    """Rows in every orch_* table, Redis keys of several types in two databases, a changed topic config,
    extra Weaviate objects."""
    conn = pg_connect()
    with conn.cursor() as cur:
        for i in range(25):
            q, t, p, s = (str(uuid.uuid4()) for _ in range(4))
            cur.execute(
                "INSERT INTO orch_user_query (query_id, user_id, query_text, parsed_intent) VALUES (%s, %s, %s, %s)",
                (q, f"user{i}", f"why is line {i} slow?", json.dumps({"intent": "diagnose", "n": i})),
            )
            cur.execute(
                "INSERT INTO orch_task_manage (task_id, query_id, user_id, title) VALUES (%s, %s, %s, %s)",
                (t, q, f"user{i}", f"task {i}"),
            )
            cur.execute(
                "INSERT INTO orch_execution_plan (plan_id, task_id, task_graph) VALUES (%s, %s, %s)",
                (p, t, json.dumps({"steps": [i, i + 1]})),
            )
            cur.execute(
                "INSERT INTO orch_agent_subtask (subtask_id, plan_id, agent_type) VALUES (%s, %s, %s)",
                (s, p, ["monitoring", "prediction", "control", "analysis"][i % 4]),
            )
            cur.execute(
                "INSERT INTO orch_constraint_violation (task_id, subtask_id, constraint_name, severity) "
                "VALUES (%s, %s, %s, %s)",
                (t, s, f"max_temp_{i}", ["info", "warning", "critical"][i % 3]),
            )
            cur.execute(
                "INSERT INTO orch_user_feedback (query_id, task_id, user_id) VALUES (%s, %s, %s)",
                (q, t, f"user{i}"),
            )
            cur.execute(
                "INSERT INTO orch_knowledge_metadata (source, title, domain, checksum) VALUES (%s, %s, %s, %s)",
                ("drill", f"doc {i}", "process", f"{i:064x}"),
            )
    conn.close()
    for i in range(20):
        redis_cli("SET", f"drill:str:{i}", f"value {i}")
    redis_cli("HSET", "drill:hash", "a", "1", "b", "2")
    redis_cli("RPUSH", "drill:list", "x", "y", "z")
    redis_cli("SADD", "drill:set", "p", "q", db=3)
    admin = kafka_admin()
    admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, CHANGED_TOPIC, configs={CHANGED_KEY: CHANGED_VALUE})]
    )
    admin.close()
    seeded = weaviate(f"/v1/objects?class={COLLECTION}&limit=10000")["objects"]
    for i in range(5):
        weaviate(
            "/v1/objects",
            {
                "class": COLLECTION,
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"drill/{i}")),
                "properties": {
                    "key": f"drill-{i}",
                    "title": f"Drill note {i}",
                    "content": f"restore drill {i}",
                },
            },
            method="POST",
        )
    before = snapshot()
    # The seed mirrors each Weaviate object into orch_knowledge_metadata: 25 rows more than it seeded.
    assert all(
        rows == 25 for table, (rows, _) in before["postgres"].items() if table != "orch_knowledge_metadata"
    )
    assert before["postgres"]["orch_knowledge_metadata"][0] == 25 + len(seeded)
    assert before["weaviate"]["objects"] == len(seeded) + 5
    assert before["redis"]["keys"] == {"db0": 22, "db3": 1}
    assert before["kafka"][CHANGED_TOPIC][CHANGED_KEY] == CHANGED_VALUE
    STATE["before"] = before


def dangling_volumes() -> set[str]:
    """Volumes no container uses: what a tool container's anonymous volumes (its image's VOLUME lines) become
    when it is removed without them."""
    listed = subprocess.run(
        ["docker", "volume", "ls", "-q", "-f", "dangling=true"], check=True, capture_output=True, text=True
    )
    return set(listed.stdout.split())


def test_backup_writes_one_run_with_one_manifest(tmp_path):
    fetch_dir = tmp_path / "fetched"
    left_before = dangling_volumes()
    result = run_playbook("-e", "backup_fetch=true", "-e", f"backup_fetch_dir={fetch_dir}", playbook=BACKUP)
    assert result.rc == 0, result.output[-4000:]
    left = dangling_volumes() - left_before
    print(f"backup run: {len(left)} volumes left behind by its tool containers")
    assert not left, f"the backup's tool containers left anonymous volumes: {sorted(left)}"
    assert len(runs()) == 1
    run = BACKUP_ROOT / runs()[-1]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["run_id"] == run.name
    assert sorted(manifest["parts"]) == ["kafka", "postgres", "redis", "weaviate"]
    before = STATE["before"]
    assert manifest["parts"]["weaviate"]["counted"]["objects"] == {COLLECTION: before["weaviate"]["objects"]}
    rows = manifest["parts"]["postgres"]["counted"]["rows"]["prism"]
    assert {t: rows[f"public.{t}"] for t in before["postgres"]} == {
        t: c for t, (c, _) in before["postgres"].items()
    }
    assert manifest["parts"]["redis"]["counted"]["keys"] == before["redis"]["keys"]
    assert manifest["parts"]["kafka"]["counted"]["topics"] == 14
    assert "17." in manifest["parts"]["postgres"]["tool_version"]
    files = {f["file"] for part in manifest["parts"].values() for f in part["files"]}
    assert {"postgres/prism.dump", "postgres/globals.sql", "redis/dump.rdb", "kafka/metadata.json"} <= files
    assert metric("prism_backup_last_run_success") == "1"
    # The copy on the control node is the same run: every file with the manifest's sha256.
    fetched = fetch_dir / run.name
    assert json.loads((fetched / "manifest.json").read_text()) == manifest
    for part in manifest["parts"].values():
        for entry in part["files"]:
            assert hashlib.sha256((fetched / entry["file"]).read_bytes()).hexdigest() == entry["sha256"], (
                entry
            )
    STATE["run"] = run.name
    STATE["success_time"] = metric("prism_backup_last_success_timestamp_seconds")


def test_restore_of_an_unknown_run_id_is_refused():
    result = run_playbook(
        "-e", "backup_run_id=20000101T000000Z", "-e", "backup_restore_confirm=true", playbook=RESTORE
    )
    assert result.rc != 0
    assert "Unknown run id 20000101T000000Z" in result.output and STATE["run"] in result.output
    assert snapshot() == STATE["before"]


def test_restore_of_a_run_with_a_missing_part_is_refused():
    """A copy of the run whose manifest has no redis part: restoring redis from it is refused."""
    copy_id = "20000101T000001Z"
    copy = BACKUP_ROOT / copy_id
    shutil.copytree(BACKUP_ROOT / STATE["run"], copy)
    try:
        manifest = json.loads((copy / "manifest.json").read_text())
        del manifest["parts"]["redis"]
        manifest["run_id"] = copy_id
        (copy / "manifest.json").write_text(json.dumps(manifest))
        result = run_playbook(
            "-e", f"backup_run_id={copy_id}", "-e", "backup_restore_confirm=true", playbook=RESTORE
        )
        assert result.rc != 0
        assert f"Run {copy_id} has no part 'redis'" in result.output
        assert snapshot() == STATE["before"]
    finally:
        shutil.rmtree(copy)


def test_restore_over_data_without_confirm_is_refused():
    result = run_playbook(playbook=RESTORE)
    assert result.rc != 0
    assert "Refusing to restore run " + STATE["run"] in result.output
    assert "backup_restore_confirm=true" in result.output
    assert "orch_user_query (25 rows)" in result.output
    assert snapshot() == STATE["before"]


def test_backup_to_an_unwritable_root_fails_clearly():
    with tmpfs(Path("/tmp/prism-backup-ro"), "ro,size=1m") as root:
        result = run_playbook("-e", f"backup_root={root}", playbook=BACKUP)
    assert result.rc != 0
    assert f"backup_root {root} is not writable" in result.output
    assert metric("prism_backup_last_run_success") == "0"
    # The failure keeps the time of the last success: PrismBackupTooOld counts from it.
    assert metric("prism_backup_last_success_timestamp_seconds") == STATE["success_time"]
    assert runs() == [STATE["run"]]


def test_backup_to_a_full_disk_fails_and_leaves_no_partial_run():
    with tmpfs(Path("/tmp/prism-backup-full"), "size=16k") as root:
        result = run_playbook("-e", f"backup_root={root}", playbook=BACKUP)
        left = sorted(p.name for p in root.iterdir())
    assert result.rc != 0
    assert "FAILED at" in result.output and "No space left on device" in result.output
    assert left == [], "the incomplete run must be removed"
    assert metric("prism_backup_last_run_success") == "0"


def test_destroy_the_data_volumes_converge_and_restore():
    for service in ("postgres", "redis", "kafka", "weaviate"):
        subprocess.run(["docker", "rm", "-f", "-v", f"{PREFIX}_{service}"], check=True, capture_output=True)
        subprocess.run(
            ["docker", "volume", "rm", f"{PREFIX}_{service}_data"], check=True, capture_output=True
        )
    converge = run_playbook(playbook=str(ROOT / "molecule" / "backup" / "converge.yml"))
    assert converge.rc == 0, converge.output[-4000:]
    empty = snapshot()
    # Only what a fresh deploy seeds: Weaviate's knowledge and its PostgreSQL mirror.
    assert all(
        rows == 0 for table, (rows, _) in empty["postgres"].items() if table != "orch_knowledge_metadata"
    )
    assert empty["weaviate"]["objects"] == STATE["before"]["weaviate"]["objects"] - 5
    assert empty["redis"]["keys"] == {}
    assert empty["kafka"][CHANGED_TOPIC].get(CHANGED_KEY) != CHANGED_VALUE
    left_before = dangling_volumes()
    result = run_playbook("-e", "backup_restore_confirm=true", playbook=RESTORE)
    assert result.rc == 0, result.output[-4000:]
    assert f"Restored run {STATE['run']}" in result.output
    left = dangling_volumes() - left_before
    print(f"restore: {len(left)} volumes left behind by its tool containers")
    assert not left, f"the restore's tool containers left anonymous volumes: {sorted(left)}"


def test_restored_data_equals_the_data_before_the_backup():
    after = snapshot()
    before = STATE["before"]
    assert after["postgres"] == before["postgres"]  # rows and content md5 per orch_* table
    assert after["redis"] == before["redis"]  # keys per db and the digest of every key's value
    assert after["kafka"] == before["kafka"]  # every topic's config overrides
    assert after["weaviate"] == before["weaviate"]  # object count and the hash of every object's content
    # The app user works against the restored database (roles and grants came back).
    app = pg_connect("prism_app", "postgres_app_password")
    with app.cursor() as cur:
        cur.execute("SELECT count(*) FROM orch_task_manage")
        assert cur.fetchone()[0] == 25
    app.close()


def test_a_corrupted_file_is_refused_naming_it_and_nothing_changes():
    dump = BACKUP_ROOT / STATE["run"] / "postgres" / "prism.dump"
    original = dump.read_bytes()
    corrupted = bytearray(original)
    corrupted[len(corrupted) // 2] ^= 0xFF
    redis_cli("SET", "drill:after-restore", "1")
    current = snapshot()
    dump.write_bytes(bytes(corrupted))
    try:
        result = run_playbook("-e", "backup_restore_confirm=true", playbook=RESTORE)
        assert result.rc != 0
        assert f"{dump}: sha256" in result.output and "nothing was changed" in result.output
        assert snapshot() == current
    finally:
        dump.write_bytes(original)
        redis_cli("DEL", "drill:after-restore")


def test_schedule_installs_a_cron_entry_and_a_wrapper_that_reports():
    env = json.dumps({"backup_schedule_env": {"MOLECULE_PROJECT_DIRECTORY": str(ROOT)}})
    result = run_playbook(
        "-e",
        env,
        "-e",
        f"backup_schedule_inventory={ROOT}/inventories/molecule",
        playbook="playbooks/schedule_backups.yml",
    )
    assert result.rc == 0, result.output[-4000:]
    unit = f"prism-backup-{PREFIX.replace('_', '-')}"
    wrapper = Path(f"/usr/local/sbin/prism-backup-{PREFIX}")
    log = Path(f"/var/log/prism-backup-{PREFIX}.log")
    if Path(f"/etc/systemd/system/{unit}.timer").exists():
        pytest.skip("not run here: this host runs systemd; the timer is tested by its own unit files")
    cron = Path(f"/etc/cron.d/{unit}").read_text()
    assert f"30 2 * * * root {wrapper}" in cron
    # A good run: exit 0, one OK line, the metric says success.
    ok = subprocess.run([str(wrapper)], capture_output=True, text=True, timeout=900, check=False)
    assert ok.returncode == 0, log.read_text()[-4000:]
    last = log.read_text().splitlines()[-1]
    assert f"prism-backup {PREFIX}: OK run=" in last
    assert metric("prism_backup_last_run_success") == "1"
    # A failed run (read-only backup root): non-zero exit, a FAILED line, the metric says failure.
    with tmpfs(BACKUP_ROOT, "ro,size=1m"):
        failed = subprocess.run([str(wrapper)], capture_output=True, text=True, timeout=900, check=False)
    assert failed.returncode != 0
    assert f"prism-backup {PREFIX}: FAILED rc={failed.returncode}" in log.read_text().splitlines()[-1]
    assert metric("prism_backup_last_run_success") == "0"
    # Two good runs now; retention with keep=1 prunes the older one.
    pruned = run_playbook("-e", "backup_retention_keep=1", playbook=BACKUP)
    assert pruned.rc == 0, pruned.output[-4000:]
    assert len(runs()) == 1
    off = run_playbook("-e", "backup_schedule_enabled=false", playbook="playbooks/schedule_backups.yml")
    assert off.rc == 0, off.output[-4000:]
    cron_file = Path(f"/etc/cron.d/{unit}")
    assert not cron_file.exists() or str(wrapper) not in cron_file.read_text()
    # The wrapper and its log are this test's leftovers on the control node.
    wrapper.unlink()
    log.unlink()
