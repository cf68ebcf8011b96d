"""Bad input through the real playbook: each run must fail with a message naming the thing and the fix,
and leave the deployed stack exactly as it was."""

from __future__ import annotations

import json
import shutil
import socket

import pytest
from conftest import PREFIX, ROOT, inspect, pg_connect, run_playbook, secret


def _state(host) -> tuple:
    """What must not change: the container's id and start time, and the applied migrations."""
    c = inspect(host, f"{PREFIX}_postgres")
    with pg_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT version, checksum FROM prism_schema_migrations ORDER BY version")
        migrations = cur.fetchall()
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        tables = cur.fetchone()[0]
    return c["Id"], c["State"]["StartedAt"], migrations, tables


@pytest.fixture()
def migrations_copy(tmp_path):
    dest = tmp_path / "migrations"
    shutil.copytree(ROOT / "files" / "migrations" / "postgres", dest)
    return dest


def test_second_check_run_reports_no_changes():
    result = run_playbook("--check", "--diff")
    assert result.rc == 0, result.output[-3000:]
    assert result.recap["changed"] == 0, result.output[-3000:]
    assert result.recap["failed"] == 0


def test_edited_migration_is_drift(host, migrations_copy):
    first = sorted(migrations_copy.glob("V*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after it was applied\n")
    before = _state(host)
    result = run_playbook("-e", f"postgres_migrations_src={migrations_copy}")
    assert result.rc != 0
    assert first.name in result.output
    assert "immutable" in result.output or "new migration" in result.output
    assert _state(host) == before


def test_malformed_migration_name_is_refused(host, migrations_copy):
    (migrations_copy / "add-index.sql").write_text("CREATE INDEX x ON orch_task_manage (title);\n")
    before = _state(host)
    result = run_playbook("-e", f"postgres_migrations_src={migrations_copy}")
    assert result.rc != 0
    assert "add-index.sql" in result.output
    assert "V<" in result.output or "pattern" in result.output
    assert _state(host) == before


def test_missing_migrations_directory_is_refused(host, tmp_path):
    before = _state(host)
    result = run_playbook("-e", f"postgres_migrations_src={tmp_path / 'nowhere'}")
    assert result.rc != 0
    assert "postgres_migrations_src" in result.output
    assert _state(host) == before


def test_unknown_image_source_is_refused(host):
    before = _state(host)
    result = run_playbook("-e", "prism_image_source=ftp")
    assert result.rc != 0
    assert "'ftp'" in result.output and "registry, archive, build" in result.output
    assert _state(host) == before


def test_port_already_taken_is_refused(host):
    before = _state(host)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        result = run_playbook("-e", f"postgres_port={port}")
    assert result.rc != 0
    assert f"127.0.0.1:{port}" in result.output and "already in use" in result.output
    assert "postgres_port" in result.output
    assert _state(host) == before


def test_unreachable_engine_is_refused(host):
    before = _state(host)
    result = run_playbook(
        "-e", "docker_host_install=false", "-e", "docker_host_socket=/run/prism-no-such-engine.sock"
    )
    assert result.rc != 0
    assert "/run/prism-no-such-engine.sock" in result.output and "does not answer" in result.output
    assert _state(host) == before


def test_a_second_checkout_with_new_secrets_is_refused_before_anything_changes(host, tmp_path):
    """A second checkout deploying this host brings its own, empty .secrets/<env>: every secret is generated
    anew. The kept secrets (the registry's kept_secrets: the initdb password, the Kafka cluster id, ...) would
    then no longer match the data. The preflight must refuse, name them and the fix, and change nothing:
    not the containers, not the password file PostgreSQL was initialised with."""
    base = "/opt/prism-molecule"
    record = host.file(f"{base}/kept_secrets.json")
    assert record.exists and record.mode == 0o600
    fingerprints = json.loads(record.content_string)
    print(f"{len(fingerprints)} kept secrets recorded: {', '.join(sorted(fingerprints))}")
    assert {"postgres_superuser_password", "kafka_cluster_id"} <= set(fingerprints)
    for name in fingerprints:  # fingerprints only, never a value
        assert secret(name) not in record.content_string
    password_file = host.file(f"{base}/postgres/secrets/superuser_password").content_string
    before = _state(host), inspect(host, f"{PREFIX}_kafka")["State"]["StartedAt"]

    fresh = tmp_path / "secrets"
    result = run_playbook("-e", f"prism_secrets_dir={fresh}")
    assert result.rc != 0
    assert "kept_secrets.json" in result.output and "nothing was changed" in result.output
    for name in ("postgres_superuser_password", "kafka_cluster_id"):
        assert name in result.output
    assert f"copy prism_secrets_dir, {fresh}" in result.output
    assert result.recap["changed"] == 0
    assert host.file(f"{base}/postgres/secrets/superuser_password").content_string == password_file
    assert (_state(host), inspect(host, f"{PREFIX}_kafka")["State"]["StartedAt"]) == before
