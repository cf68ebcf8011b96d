"""Planning logic of prism_pg_schema: pure functions over file names, bytes and history rows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from ansible.module_utils.prism_changes import ChangeTracker
from ansible.module_utils.prism_pg_schema import (
    AppliedMigration,
    MigrationError,
    is_transaction_control,
    parse_file_name,
    parse_migrations,
    plan_migrations,
    read_migration_dir,
    scan_statements,
    validate_history_table,
)
from ansible.module_utils.prism_postgres import connection_params, describe_target
from expected_schema import ORCH_TABLES
from module_stub import FailJson, FakeModule

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "files" / "migrations" / "postgres"


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def applied(files: dict[str, bytes], *names: str) -> list[AppliedMigration]:
    return [AppliedMigration(parse_file_name(n)[0], n, sha(files[n])) for n in names]


FILES = {
    "V001__first.sql": b"CREATE TABLE a (id int);\n",
    "V002__second.sql": b"CREATE TABLE b (id int);\n",
    "V010__tenth.sql": b"CREATE TABLE c (id int);\n",
}


# --- file names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "slug"),
    [
        ("V001__orch_tables.sql", 1, "orch_tables"),
        ("V010__x.sql", 10, "x"),
        ("V1234__add_index_2.sql", 1234, "add_index_2"),
        ("V000__bootstrap.sql", 0, "bootstrap"),
    ],
)
def test_parse_file_name_accepts_pattern(name: str, version: int, slug: str) -> None:
    assert parse_file_name(name) == (version, slug)


@pytest.mark.parametrize(
    "name",
    [
        "V1__too_short.sql",
        "V01__too_short.sql",
        "v001__lower_v.sql",
        "V001_single_underscore.sql",
        "V001__Upper.sql",
        "V001__has-dash.sql",
        "V001__.sql",
        "001__no_v.sql",
        "V001__x.sql.bak.sql",
        "V001__x.SQL",
    ],
)
def test_parse_file_name_rejects_and_names_file_and_pattern(name: str) -> None:
    with pytest.raises(MigrationError) as err:
        parse_file_name(name)
    assert repr(name) in err.value.msg
    assert "V<version>__<slug>.sql" in err.value.msg
    assert err.value.details["file"] == name


def test_versions_order_numerically_not_lexically() -> None:
    files = {
        "V010__ten.sql": b"SELECT 10;",
        "V002__two.sql": b"SELECT 2;",
        "V1000__thousand.sql": b"SELECT 1000;",
        "V100__hundred.sql": b"SELECT 100;",
    }
    names = [m.file_name for m in parse_migrations(files)]
    assert names == ["V002__two.sql", "V010__ten.sql", "V100__hundred.sql", "V1000__thousand.sql"]


def test_parse_migrations_records_sha256_of_bytes_and_text() -> None:
    content = "-- café\nSELECT 'ü';\n".encode()
    (migration,) = parse_migrations({"V001__utf8.sql": content})
    assert migration.checksum == sha(content)
    assert migration.sql == content.decode("utf-8")
    assert migration.version == 1


def test_duplicate_versions_fail_naming_both_files() -> None:
    with pytest.raises(MigrationError) as err:
        parse_migrations({"V001__a.sql": b"SELECT 1;", "V0001__b.sql": b"SELECT 2;"})
    assert "V001__a.sql" in err.value.msg
    assert "V0001__b.sql" in err.value.msg
    assert "same version 1" in err.value.msg


@pytest.mark.parametrize("content", [b"", b"   \n\t\n", b"-- only a comment\n", b"/* block */ ;;\n"])
def test_empty_file_fails_naming_it(content: bytes) -> None:
    with pytest.raises(MigrationError) as err:
        parse_migrations({"V001__ok.sql": b"SELECT 1;", "V002__empty.sql": content})
    assert "'V002__empty.sql' is empty" in err.value.msg
    assert err.value.details["file"] == "V002__empty.sql"


def test_non_utf8_file_fails_naming_it() -> None:
    with pytest.raises(MigrationError) as err:
        parse_migrations({"V001__latin1.sql": "SELECT 'é';".encode("latin-1")})
    assert "V001__latin1.sql" in err.value.msg
    assert "UTF-8" in err.value.msg


def test_malformed_name_among_good_ones_fails() -> None:
    with pytest.raises(MigrationError) as err:
        parse_migrations({**FILES, "V3__bad.sql": b"SELECT 1;"})
    assert "'V3__bad.sql'" in err.value.msg


# --- directory reading ---------------------------------------------------------------------------------


def test_read_dir_takes_sql_files_only(tmp_path: Path) -> None:
    (tmp_path / "V001__a.sql").write_bytes(b"SELECT 1;")
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "nested.sql").mkdir()
    (tmp_path / "old.SQL").write_bytes(b"SELECT 2;")
    assert read_migration_dir(str(tmp_path)) == {"V001__a.sql": b"SELECT 1;", "old.SQL": b"SELECT 2;"}
    # an upper-case .SQL file is a migration with a bad name, not something to skip silently
    with pytest.raises(MigrationError, match="old.SQL"):
        parse_migrations(read_migration_dir(str(tmp_path)))


def test_read_dir_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(MigrationError) as err:
        read_migration_dir(str(missing))
    assert str(missing) in err.value.msg
    assert "does not exist" in err.value.msg


def test_read_dir_path_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "V001__a.sql"
    file.write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="is not a directory"):
        read_migration_dir(str(file))


# --- planning against history ---------------------------------------------------------------------------


def test_everything_pending_on_empty_history() -> None:
    plan = plan_migrations(parse_migrations(FILES), [])
    assert [m.file_name for m in plan.pending] == ["V001__first.sql", "V002__second.sql", "V010__tenth.sql"]
    assert plan.current_version is None
    assert plan.target_version == 10


def test_only_new_files_pending() -> None:
    plan = plan_migrations(parse_migrations(FILES), applied(FILES, "V001__first.sql", "V002__second.sql"))
    assert [m.file_name for m in plan.pending] == ["V010__tenth.sql"]
    assert plan.current_version == 2
    assert plan.target_version == 10


def test_nothing_pending_when_all_applied() -> None:
    plan = plan_migrations(parse_migrations(FILES), applied(FILES, *FILES))
    assert plan.pending == []
    assert plan.current_version == 10


def test_history_order_does_not_matter() -> None:
    history = list(reversed(applied(FILES, *FILES)))
    assert plan_migrations(parse_migrations(FILES), history).pending == []


def test_drift_fails_naming_file_and_both_checksums() -> None:
    history = applied(FILES, *FILES)
    edited = {**FILES, "V002__second.sql": b"CREATE TABLE b (id bigint);\n"}
    with pytest.raises(MigrationError) as err:
        plan_migrations(parse_migrations(edited), history)
    msg = err.value.msg
    assert "V002__second.sql" in msg
    assert sha(edited["V002__second.sql"])[:12] in msg
    assert sha(FILES["V002__second.sql"])[:12] in msg
    assert "immutable" in msg
    assert "restore the file and add a new migration" in msg
    assert err.value.details["recorded_checksum"] == sha(FILES["V002__second.sql"])


def test_whitespace_edit_is_drift_too() -> None:
    history = applied(FILES, "V001__first.sql")
    edited = {"V001__first.sql": FILES["V001__first.sql"] + b"\n"}
    with pytest.raises(MigrationError, match="V001__first.sql was changed after it was applied"):
        plan_migrations(parse_migrations(edited), history)


def test_missing_applied_file_fails_naming_version_and_file() -> None:
    history = applied(FILES, "V001__first.sql", "V002__second.sql")
    remaining = {k: v for k, v in FILES.items() if k != "V002__second.sql"}
    with pytest.raises(MigrationError) as err:
        plan_migrations(parse_migrations(remaining), history)
    assert "version 2 (V002__second.sql) has no file" in err.value.msg
    assert "restore the file" in err.value.msg


def test_renamed_applied_file_fails() -> None:
    history = applied(FILES, "V001__first.sql")
    renamed = {"V001__renamed.sql": FILES["V001__first.sql"]}
    with pytest.raises(MigrationError) as err:
        plan_migrations(parse_migrations(renamed), history)
    assert "V001__renamed.sql" in err.value.msg
    assert "V001__first.sql" in err.value.msg


def test_new_file_older_than_newest_applied_fails() -> None:
    history = applied(FILES, "V001__first.sql", "V010__tenth.sql")
    with pytest.raises(MigrationError) as err:
        plan_migrations(parse_migrations(FILES), history)
    assert "V002__second.sql" in err.value.msg
    assert "above 10" in err.value.msg


def test_change_tracker_diff_before_after() -> None:
    from ansible.module_utils.prism_pg_schema import change_tracker

    plan = plan_migrations(parse_migrations(FILES), applied(FILES, "V001__first.sql"))
    tracker = change_tracker(plan)
    assert tracker.changed
    assert tracker.diff() == {
        "before": {"applied": ["V001__first.sql"]},
        "after": {"applied": ["V001__first.sql", "V002__second.sql", "V010__tenth.sql"]},
    }
    unchanged = change_tracker(plan_migrations(parse_migrations(FILES), applied(FILES, *FILES)))
    assert not unchanged.changed


def test_change_tracker_generic() -> None:
    tracker = ChangeTracker()
    tracker.add("partitions", 3, 3)
    assert not tracker.changed
    tracker.add("retention_ms", "604800000", "86400000")
    tracker.add("cleanup_policy", "delete", "delete")
    assert tracker.changed
    assert tracker.differences == ["retention_ms"]
    assert tracker.diff()["before"] == {
        "partitions": 3,
        "retention_ms": "604800000",
        "cleanup_policy": "delete",
    }
    tracker.add("retention_ms", "86400000", "86400000")
    assert not tracker.changed


@pytest.mark.parametrize("name", ["prism_schema_migrations", "_hist", "h" * 63])
def test_history_table_valid(name: str) -> None:
    validate_history_table(name)


@pytest.mark.parametrize("name", ["", "Upper", "1st", "has space", "x; DROP TABLE y", "h" * 64])
def test_history_table_invalid(name: str) -> None:
    with pytest.raises(MigrationError, match="history_table"):
        validate_history_table(name)


# --- SQL scanning: transaction control and statement boundaries -----------------------------------------


def first_words(sql: str) -> list[str]:
    return [s.words[0] for s in scan_statements(sql)]


def test_scan_skips_comments_strings_and_dollar_bodies() -> None:
    sql = """
    -- COMMIT; in a comment
    /* nested /* COMMIT; */ still comment; */
    DO $$ BEGIN PERFORM 1; END $$;
    CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END; $body$;
    SELECT 'a;b', E'it\\'s; fine', "we;ird", 'x''y;z';
    INSERT INTO t VALUES ($1);
    """
    assert first_words(sql) == ["DO", "CREATE", "SELECT", "INSERT"]
    # the E'' literal is skipped whole: its escaped quote does not end it early
    assert scan_statements(sql)[2].words == ["SELECT", "E"]


def test_scan_keeps_begin_atomic_body_in_one_statement() -> None:
    sql = (
        "CREATE FUNCTION g(x int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND;\nSELECT 3;"
    )
    statements = scan_statements(sql)
    assert [s.words[:2] for s in statements] == [["CREATE", "FUNCTION"], ["SELECT"]]
    assert [s.line for s in statements] == [1, 6]


def test_scan_keeps_parenthesised_rule_actions_in_one_statement() -> None:
    sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO log VALUES (1); COMMIT_LOG());\nSELECT 1;"
    assert first_words(sql) == ["CREATE", "SELECT"]


def test_scan_reports_statement_lines() -> None:
    sql = "SELECT 1;\n\n-- note\nSELECT\n 2;\n/* multi\nline */ COMMIT;"
    assert [s.line for s in scan_statements(sql)] == [1, 4, 7]


@pytest.mark.parametrize(
    ("statement", "control"),
    [
        ("BEGIN", True),
        ("begin transaction isolation level serializable", True),
        ("COMMIT", True),
        ("END", True),
        ("ABORT", True),
        ("ROLLBACK", True),
        ("START TRANSACTION", True),
        ("PREPARE TRANSACTION 'x'", True),
        ("ROLLBACK TO SAVEPOINT s", False),
        ("ROLLBACK TRANSACTION TO s", False),
        ("SAVEPOINT s", False),
        ("RELEASE SAVEPOINT s", False),
        ("PREPARE q AS SELECT 1", False),
        ("CREATE TABLE begin_log (id int)", False),
        ("SELECT 1", False),
    ],
)
def test_is_transaction_control(statement: str, control: bool) -> None:
    (scanned,) = scan_statements(statement)
    assert is_transaction_control(scanned.words) is control


def test_transaction_control_in_file_fails_with_line() -> None:
    content = b"-- wrapped by hand\nBEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n"
    with pytest.raises(MigrationError) as err:
        parse_migrations({"V003__wrapped.sql": content})
    assert "V003__wrapped.sql" in err.value.msg
    assert "line 2: BEGIN" in err.value.msg
    assert "Remove BEGIN/COMMIT/ROLLBACK" in err.value.msg


def test_plpgsql_begin_end_is_not_transaction_control() -> None:
    content = b"DO $$\nBEGIN\n  RAISE NOTICE 'x';\nEND\n$$;\n"
    assert len(parse_migrations({"V001__do.sql": content})) == 1


# --- the shipped schema ---------------------------------------------------------------------------------


def test_shipped_migrations_parse() -> None:
    migrations = parse_migrations(read_migration_dir(str(SCHEMA_DIR)))
    assert [m.file_name for m in migrations][:2] == ["V001__orch_tables.sql", "V002__orch_app_privileges.sql"]
    text = migrations[0].sql
    for table in sorted(ORCH_TABLES):
        assert f"CREATE TABLE public.{table} (" in text
    for index in ("idx_task_user_status", "idx_query_parsed_intent", "idx_plan_task_graph"):
        assert f"CREATE INDEX {index} " in text


# --- connection options and documentation ---------------------------------------------------------------


def test_connection_params_map_options_without_unset_password() -> None:
    params = {
        "login_host": "db",
        "login_port": 6543,
        "login_user": "admin",
        "login_password": None,
        "login_db": "prism",
        "connect_timeout": 3,
        "ssl_mode": "require",
        "ca_cert": None,
    }
    conn = connection_params(params)
    assert conn["host"] == "db"
    assert conn["port"] == 6543
    assert conn["dbname"] == "prism"
    assert conn["sslmode"] == "require"
    assert "password" not in conn
    assert "sslrootcert" not in conn
    conn = connection_params({**params, "login_password": "s3cret", "ca_cert": "/ca.pem"})
    assert conn["password"] == "s3cret"
    assert conn["sslrootcert"] == "/ca.pem"
    assert "s3cret" not in describe_target({**params, "login_password": "s3cret"})


def test_missing_psycopg2_fails_with_missing_required_lib(monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible.module_utils.prism_postgres as prism_postgres
    from ansible.module_utils.basic import missing_required_lib

    prism_postgres.ensure_psycopg2(FakeModule())  # installed here: no failure
    monkeypatch.setattr(prism_postgres, "HAS_PSYCOPG2", False)
    monkeypatch.setattr(prism_postgres, "PSYCOPG2_IMPORT_ERROR", "Traceback ... No module named 'psycopg2'")
    with pytest.raises(FailJson) as err:
        prism_postgres.ensure_psycopg2(FakeModule())
    (kwargs,) = err.value.args
    assert kwargs["msg"] == missing_required_lib("psycopg2")
    assert "No module named 'psycopg2'" in kwargs["exception"]
