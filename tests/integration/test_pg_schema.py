"""prism_pg_schema against a real PostgreSQL 17 server, run through ansible-playbook."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import pytest
from ansible.module_utils.prism_pg_schema import ADVISORY_LOCK_KEY
from expected_schema import ORCH_TABLES

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "files" / "migrations" / "postgres"
SHIPPED = sorted(p.name for p in SCHEMA_DIR.glob("V*.sql"))
HISTORY = "prism_schema_migrations"
TABLES = set(ORCH_TABLES)


# --- helpers ----------------------------------------------------------------------------------------------


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A writable copy of the shipped migrations."""
    target = tmp_path / "migrations"
    shutil.copytree(SCHEMA_DIR, target)
    return target


def query(pg_server: Any, dbname: str, sql: str, params: tuple | None = None) -> list[tuple]:
    conn = pg_server.connect(dbname)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        conn.close()


def public_tables(pg_server: Any, dbname: str) -> set[str]:
    rows = query(pg_server, dbname, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r[0] for r in rows}


def history(pg_server: Any, dbname: str) -> list[tuple]:
    return query(
        pg_server, dbname, f"SELECT version, file_name, checksum FROM public.{HISTORY} ORDER BY version"
    )


def schema_args(pg_server: Any, dbname: str, path: Path | str, **extra: Any) -> dict[str, Any]:
    return {**pg_server.login_args(dbname), "path": str(path), **extra}


def apply_ok(runner: Any, args: dict[str, Any]) -> dict[str, Any]:
    run = runner.run("prism_pg_schema", args)
    assert run.rc == 0 and not run.failed, run.result.get("msg", run.output)
    return run.result


def expect_failure(runner: Any, args: dict[str, Any], *, check: bool = False) -> str:
    run = runner.run("prism_pg_schema", args, check=check)
    assert run.rc != 0 and run.failed, run.output
    return str(run.result["msg"])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- applying -------------------------------------------------------------------------------------------


def test_fresh_database_gets_schema_then_rerun_changes_nothing(runner, pg_server, database) -> None:
    args = schema_args(pg_server, database, SCHEMA_DIR)
    first = apply_ok(runner, args)
    assert first["changed"] is True
    assert first["applied"] == SHIPPED
    assert first["pending"] == SHIPPED
    assert first["migrations"] == len(SHIPPED)
    assert first["current_version"] == int(SHIPPED[-1][1:].split("__")[0])
    assert first["diff"] == {"before": {"applied": []}, "after": {"applied": SHIPPED}}

    assert public_tables(pg_server, database) == TABLES | {HISTORY}
    rows = history(pg_server, database)
    assert [(v, f) for v, f, _c in rows] == [(int(n[1:4]), n) for n in SHIPPED]
    assert [c for _v, _f, c in rows] == [sha(SCHEMA_DIR / n) for n in SHIPPED]
    (bad_ms,) = query(pg_server, database, f"SELECT count(*) FROM public.{HISTORY} WHERE execution_ms < 0")[0]
    assert bad_ms == 0

    second = apply_ok(runner, args)
    assert second["changed"] is False
    assert second["applied"] == []
    assert second["pending"] == []
    assert second["current_version"] == first["current_version"]
    assert len(history(pg_server, database)) == len(SHIPPED)


def test_schema_keys_indexes_and_checks(runner, pg_server, database) -> None:
    apply_ok(runner, schema_args(pg_server, database, SCHEMA_DIR))

    pk_defaults = query(
        pg_server,
        database,
        """
        SELECT c.table_name, c.column_name, c.data_type, c.column_default
        FROM information_schema.table_constraints tc
        JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name, table_name)
        JOIN information_schema.columns c
          ON c.table_schema = tc.table_schema AND c.table_name = tc.table_name
         AND c.column_name = k.column_name
        WHERE tc.table_schema = 'public' AND tc.constraint_type = 'PRIMARY KEY'
          AND tc.table_name LIKE 'orch_%'
        """,
    )
    assert {r[0] for r in pk_defaults} == TABLES
    for table, column, data_type, default in pk_defaults:
        assert (data_type, default) == ("uuid", "gen_random_uuid()"), (table, column)

    indexes = dict(
        query(
            pg_server,
            database,
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
        )
    )
    assert "ON public.orch_task_manage USING btree (user_id, status)" in indexes["idx_task_user_status"]
    assert "ON public.orch_user_query USING gin (parsed_intent)" in indexes["idx_query_parsed_intent"]
    assert "ON public.orch_execution_plan USING gin (task_graph)" in indexes["idx_plan_task_graph"]

    # every foreign key column leads some index of its table
    unindexed = query(
        pg_server,
        database,
        """
        SELECT con.conrelid::regclass::text, a.attname
        FROM pg_constraint con
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
        WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace
          AND NOT EXISTS (
              SELECT 1 FROM pg_index i WHERE i.indrelid = con.conrelid AND i.indkey[0] = con.conkey[1]
          )
        """,
    )
    assert unindexed == []

    tenant_columns = query(
        pg_server,
        database,
        "SELECT table_name, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = 'public' AND column_name = 'tenant_id'",
    )
    assert {r[0] for r in tenant_columns} == TABLES
    assert {(r[1], r[2]) for r in tenant_columns} == {("NO", "'default'::text")}

    conn = pg_server.connect(database)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "INSERT INTO orch_user_query (user_id, query_text, parsed_intent) "
                "VALUES ('u1', 'check line 3', '{\"intent\": \"inspect\"}') RETURNING query_id"
            )
            (query_id,) = cursor.fetchone()
            cursor.execute(
                "INSERT INTO orch_task_manage (query_id, user_id, title) VALUES (%s, 'u1', 't') "
                "RETURNING task_id",
                (query_id,),
            )
            (task_id,) = cursor.fetchone()
            cursor.execute(
                "INSERT INTO orch_execution_plan (task_id, task_graph) VALUES (%s, '{\"nodes\": []}') "
                "RETURNING plan_id",
                (task_id,),
            )
            (plan_id,) = cursor.fetchone()
            cursor.execute(
                "INSERT INTO orch_agent_subtask (plan_id, agent_type) VALUES (%s, 'monitoring')", (plan_id,)
            )
            cursor.execute("SAVEPOINT s")
            with pytest.raises(psycopg2.errors.CheckViolation):
                cursor.execute(
                    "INSERT INTO orch_agent_subtask (plan_id, agent_type) VALUES (%s, 'cooking')", (plan_id,)
                )
            cursor.execute("ROLLBACK TO SAVEPOINT s")
            # a query with tasks is restricted; deleting the task cascades to its plan and subtasks
            with pytest.raises(psycopg2.errors.ForeignKeyViolation):
                cursor.execute("DELETE FROM orch_user_query WHERE query_id = %s", (query_id,))
            cursor.execute("ROLLBACK TO SAVEPOINT s")
            cursor.execute("DELETE FROM orch_task_manage WHERE task_id = %s", (task_id,))
            cursor.execute("SELECT count(*) FROM orch_execution_plan")
            assert cursor.fetchone()[0] == 0
            cursor.execute("SELECT count(*) FROM orch_agent_subtask")
            assert cursor.fetchone()[0] == 0
        conn.rollback()
    finally:
        conn.close()


def test_custom_history_table(runner, pg_server, database) -> None:
    result = apply_ok(runner, schema_args(pg_server, database, SCHEMA_DIR, history_table="schema_log"))
    assert result["changed"] is True
    assert public_tables(pg_server, database) == TABLES | {"schema_log"}


# --- check mode -----------------------------------------------------------------------------------------


def test_check_mode_on_fresh_database_changes_nothing(runner, pg_server, database) -> None:
    run = runner.run("prism_pg_schema", schema_args(pg_server, database, SCHEMA_DIR), check=True, diff=True)
    assert run.rc == 0 and not run.failed, run.output
    assert run.result["changed"] is True
    assert run.result["pending"] == SHIPPED
    assert run.result["applied"] == []
    assert run.result["current_version"] is None
    assert run.result["diff"] == {"before": {"applied": []}, "after": {"applied": SHIPPED}}
    for name in SHIPPED:
        assert name in run.output
    assert public_tables(pg_server, database) == set()


def test_check_mode_runs_the_sql_and_reports_errors(runner, pg_server, database, migrations) -> None:
    (migrations / "V900__broken.sql").write_text("CREATE TABLE public.probe (id int);\nSELEC 1;\n")
    msg = expect_failure(runner, schema_args(pg_server, database, migrations), check=True)
    assert "V900__broken.sql line 2 failed" in msg
    assert "SQLSTATE 42601" in msg
    assert public_tables(pg_server, database) == set()


def test_check_mode_after_apply_reports_only_new_files(runner, pg_server, database, migrations) -> None:
    apply_ok(runner, schema_args(pg_server, database, migrations))
    (migrations / "V900__probe.sql").write_text("CREATE TABLE public.orch_probe (id int);\n")
    run = runner.run("prism_pg_schema", schema_args(pg_server, database, migrations), check=True, diff=True)
    assert run.rc == 0, run.output
    assert run.result["changed"] is True
    assert run.result["pending"] == ["V900__probe.sql"]
    assert run.result["diff"]["after"]["applied"] == SHIPPED + ["V900__probe.sql"]
    assert "orch_probe" not in public_tables(pg_server, database)
    assert len(history(pg_server, database)) == len(SHIPPED)


# --- refusals: nothing is written ------------------------------------------------------------------------


def test_drift_fails_and_changes_nothing(runner, pg_server, database, migrations) -> None:
    apply_ok(runner, schema_args(pg_server, database, migrations))
    before_tables, before_history = public_tables(pg_server, database), history(pg_server, database)
    edited = migrations / SHIPPED[0]
    recorded = sha(edited)
    edited.write_text(edited.read_text() + "\nCREATE TABLE public.sneaky (id int);\n")
    (migrations / "V900__next.sql").write_text("CREATE TABLE public.next_one (id int);\n")

    for check in (True, False):
        msg = expect_failure(runner, schema_args(pg_server, database, migrations), check=check)
        assert SHIPPED[0] in msg
        assert recorded[:12] in msg and sha(edited)[:12] in msg
        assert "immutable" in msg and "add a new migration" in msg
    assert public_tables(pg_server, database) == before_tables
    assert history(pg_server, database) == before_history


def test_missing_applied_file_fails(runner, pg_server, database, migrations) -> None:
    apply_ok(runner, schema_args(pg_server, database, migrations))
    (migrations / SHIPPED[-1]).unlink()
    msg = expect_failure(runner, schema_args(pg_server, database, migrations))
    assert f"version {int(SHIPPED[-1][1:4])} ({SHIPPED[-1]}) has no file" in msg


def test_failed_migration_rolls_back_every_pending_one(runner, pg_server, database, migrations) -> None:
    (migrations / "V900__probe.sql").write_text("CREATE TABLE public.probe (id int);\n")
    (migrations / "V901__broken.sql").write_text(
        "-- divides by zero\nINSERT INTO public.probe VALUES (1 / 0);\n"
    )
    run = runner.run("prism_pg_schema", schema_args(pg_server, database, migrations))
    assert run.failed, run.output
    msg = run.result["msg"]
    assert "V901__broken.sql" in msg
    assert "division by zero" in msg and "SQLSTATE 22012" in msg
    assert run.result["file"] == "V901__broken.sql"
    assert run.result["sqlstate"] == "22012"
    # the shipped migrations and V900 ran before V901 in the same transaction: all rolled back
    assert public_tables(pg_server, database) == set()


def test_failed_new_migration_keeps_applied_state(runner, pg_server, database, migrations) -> None:
    apply_ok(runner, schema_args(pg_server, database, migrations))
    before_history = history(pg_server, database)
    (migrations / "V900__ok.sql").write_text("CREATE TABLE public.probe_ok (id int);\n")
    (migrations / "V901__typo.sql").write_text(
        "CREATE TABLE public.probe_typo (id int);\n"
        "ALTER TABLE public.orch_user_query ADD COLUMN x nosuchtype;\n"
    )
    msg = expect_failure(runner, schema_args(pg_server, database, migrations))
    assert "V901__typo.sql line 2 failed" in msg
    assert 'type "nosuchtype" does not exist' in msg and "SQLSTATE 42704" in msg
    assert public_tables(pg_server, database) == TABLES | {HISTORY}
    assert history(pg_server, database) == before_history

    (migrations / "V901__typo.sql").unlink()
    result = apply_ok(runner, schema_args(pg_server, database, migrations))
    assert result["applied"] == ["V900__ok.sql"]
    assert result["current_version"] == 900


def test_malformed_file_name_fails_before_connecting(runner, pg_server, database, migrations) -> None:
    (migrations / "V3__oops.sql").write_text("CREATE TABLE public.oops (id int);\n")
    args = schema_args(pg_server, database, migrations, login_port=1)  # never reached
    msg = expect_failure(runner, args)
    assert "'V3__oops.sql' does not match V<version>__<slug>.sql" in msg
    assert public_tables(pg_server, database) == set()


def test_transaction_control_in_file_fails(runner, pg_server, database, migrations) -> None:
    (migrations / "V900__wrapped.sql").write_text("BEGIN;\nCREATE TABLE public.w (id int);\nCOMMIT;\n")
    msg = expect_failure(runner, schema_args(pg_server, database, migrations))
    assert "'V900__wrapped.sql' line 1: BEGIN" in msg
    assert public_tables(pg_server, database) == set()


def test_missing_path_fails(runner, pg_server, database, tmp_path) -> None:
    missing = tmp_path / "no_such_dir"
    msg = expect_failure(runner, schema_args(pg_server, database, missing))
    assert f"path '{missing}' does not exist" in msg


def test_wrong_password_fails_without_echoing_it(runner, pg_server, database) -> None:
    wrong = "wrong-" + secrets.token_hex(8)
    run = runner.run("prism_pg_schema", schema_args(pg_server, database, SCHEMA_DIR, login_password=wrong))
    assert run.failed
    assert "Could not connect to PostgreSQL at postgres@127.0.0.1" in run.result["msg"]
    assert "password authentication failed" in run.result["msg"]
    assert wrong not in run.output


# --- concurrency ----------------------------------------------------------------------------------------


def test_concurrent_runs_serialise_on_the_advisory_lock(runner, pg_server, database) -> None:
    args = schema_args(pg_server, database, SCHEMA_DIR)
    holder = pg_server.connect(database)
    procs = []
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        procs = [runner.start("prism_pg_schema", args) for _ in range(2)]
        deadline = time.monotonic() + 90
        waiting = 0
        while waiting < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            waiting = query(
                pg_server,
                database,
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()",
            )[0][0]
            finished = [runner.finish(p) for p in procs if p.poll() is not None]
            assert not finished, f"a run finished while the lock was held: {finished[0].output}"
        assert waiting == 2, "both runs should be waiting on the advisory lock"
    finally:
        holder.rollback()  # releases the lock: the runs go one after the other
        holder.close()
    runs = [runner.finish(p) for p in procs]
    assert [r.rc for r in runs] == [0, 0], [r.output for r in runs]
    assert sorted(r.result["changed"] for r in runs) == [False, True]
    assert len(history(pg_server, database)) == len(SHIPPED)


# --- least privilege ------------------------------------------------------------------------------------


def test_orch_app_member_has_dml_only(runner, pg_server, database) -> None:
    apply_ok(runner, schema_args(pg_server, database, SCHEMA_DIR))
    login, password = f"orch_app_t_{secrets.token_hex(4)}", secrets.token_hex(16)
    admin = pg_server.connect(database)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {login} LOGIN PASSWORD %s IN ROLE orch_app", (password,))
    try:
        app = pg_server.connect(database, user=login, password=password)
        app.autocommit = True
        try:
            with app.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO orch_user_query (tenant_id, user_id, query_text) "
                    "VALUES ('itest', 'u1', 'hello') RETURNING query_id"
                )
                (query_id,) = cursor.fetchone()
                cursor.execute(
                    "SELECT query_text, status FROM orch_user_query WHERE query_id = %s", (query_id,)
                )
                assert cursor.fetchone() == ("hello", "received")
                cursor.execute(
                    "UPDATE orch_user_query SET status = 'completed' WHERE query_id = %s",
                    (query_id,),
                )
                cursor.execute("DELETE FROM orch_user_query WHERE tenant_id = 'itest'")
                assert cursor.rowcount == 1

                denied = [
                    "CREATE ROLE intruder",
                    "DROP SCHEMA public CASCADE",
                    "CREATE TABLE public.intruder (id int)",
                    f"SELECT * FROM public.{HISTORY}",
                    "TRUNCATE orch_user_query",
                    "ALTER TABLE orch_user_query ADD COLUMN x int",
                    "DROP TABLE orch_task_manage",
                ]
                for statement in denied:
                    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                        cursor.execute(statement)
        finally:
            app.close()
        (can_create,) = query(
            pg_server, database, "SELECT has_schema_privilege('orch_app', 'public', 'CREATE')"
        )[0]
        assert can_create is False
        (rolcanlogin,) = query(
            pg_server, database, "SELECT rolcanlogin FROM pg_roles WHERE rolname = 'orch_app'"
        )[0]
        assert rolcanlogin is False
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP ROLE IF EXISTS {login}")
        admin.close()


# --- sources: the migrations passed in, as the postgres role does -------------------------------------------


def sources_of(directory: Path) -> list[dict[str, str]]:
    return [
        {"name": p.name, "content": p.read_text(encoding="utf-8")} for p in sorted(directory.glob("V*.sql"))
    ]


def sources_args(pg_server: Any, dbname: str, sources: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {**pg_server.login_args(dbname), "sources": sources, **extra}


def test_sources_apply_as_the_files_do_and_rerun_changes_nothing(runner, pg_server, database) -> None:
    first = apply_ok(runner, sources_args(pg_server, database, sources_of(SCHEMA_DIR)))
    assert first["changed"] is True and first["applied"] == SHIPPED
    # The same checksums as from the files: a stack seeded one way is no drift for the other.
    assert [c for _v, _f, c in history(pg_server, database)] == [sha(SCHEMA_DIR / n) for n in SHIPPED]
    assert apply_ok(runner, schema_args(pg_server, database, SCHEMA_DIR))["changed"] is False
    again = apply_ok(runner, sources_args(pg_server, database, sources_of(SCHEMA_DIR)))
    assert again["changed"] is False and again["pending"] == []


def test_sources_edited_applied_migration_is_refused(runner, pg_server, database) -> None:
    apply_ok(runner, sources_args(pg_server, database, sources_of(SCHEMA_DIR)))
    edited = sources_of(SCHEMA_DIR)
    edited[0]["content"] += "\n-- edited\n"
    before = history(pg_server, database)
    msg = expect_failure(runner, sources_args(pg_server, database, edited))
    assert edited[0]["name"] in msg and "immutable" in msg
    assert history(pg_server, database) == before


def test_sources_bad_input_is_refused_before_anything(runner, pg_server, database) -> None:
    twice = sources_of(SCHEMA_DIR)[:1] * 2
    msg = expect_failure(runner, sources_args(pg_server, database, twice))
    assert "more than once" in msg and twice[0]["name"] in msg
    both = expect_failure(
        runner, sources_args(pg_server, database, sources_of(SCHEMA_DIR), path=str(SCHEMA_DIR))
    )
    assert "mutually exclusive" in both and "path" in both and "sources" in both
    neither = expect_failure(runner, pg_server.login_args(database))
    assert "one of the following is required" in neither and "sources" in neither
    assert public_tables(pg_server, database) == set()
