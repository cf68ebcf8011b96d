# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Versioned SQL migrations for PostgreSQL: planning (pure) and applying (one transaction).

Planning works on file names, bytes and history rows only, so it is unit-tested without a database:
``read_migration_dir`` -> ``parse_migrations`` -> ``plan_migrations``. ``apply_plan`` runs the pending
files in one transaction under an advisory lock and commits, or rolls back in check mode.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.prism_changes import ChangeTracker
from ansible.module_utils.prism_postgres import pg_error_text

try:
    import psycopg2
    import psycopg2.extensions
    from psycopg2 import sql
except ImportError:  # reported by prism_postgres.ensure_psycopg2 before anything here runs
    psycopg2 = None

FILE_PATTERN = "V<version>__<slug>.sql (version: 3+ digits; slug: a-z, 0-9, _), e.g. V001__orch_tables.sql"
MIGRATION_RE = re.compile(r"^V(?P<version>[0-9]{3,})__(?P<slug>[a-z0-9_]+)\.sql$")
HISTORY_TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
HISTORY_SCHEMA = "public"
# Key of the transaction-scoped advisory lock that serialises concurrent runs: "prism_pg" in ASCII.
ADVISORY_LOCK_KEY = 0x707269736D5F7067
SHORT_CHECKSUM = 12


class MigrationError(Exception):
    """A failure with a message for the user; ``details`` are returned next to ``msg``."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


@dataclass(frozen=True)
class Migration:
    version: int
    file_name: str
    checksum: str
    sql: str


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    file_name: str
    checksum: str


@dataclass
class Plan:
    migrations: list[Migration]
    applied: list[AppliedMigration]
    pending: list[Migration] = field(default_factory=list)

    @property
    def current_version(self) -> int | None:
        return max((a.version for a in self.applied), default=None)

    @property
    def target_version(self) -> int | None:
        return max((m.version for m in self.migrations), default=self.current_version)


def checksum(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def short(digest: str) -> str:
    return digest[:SHORT_CHECKSUM]


def parse_file_name(file_name: str) -> tuple[int, str]:
    """Return ``(version, slug)`` of a migration file name or raise naming the file and the pattern."""
    match = MIGRATION_RE.match(file_name)
    if match is None:
        raise MigrationError(
            f"Migration file name {file_name!r} does not match {FILE_PATTERN}. Rename the file "
            "(or move it out of path if it is not a migration).",
            file=file_name,
        )
    return int(match.group("version")), match.group("slug")


def validate_history_table(name: str) -> None:
    if not HISTORY_TABLE_RE.match(name):
        raise MigrationError(
            f"history_table {name!r} is not a valid table name: use lower-case letters, digits and _ "
            "(at most 63 characters, not starting with a digit)."
        )


def read_migration_dir(path: str) -> dict[str, bytes]:
    """Return ``{file name: bytes}`` of every regular file ending in .sql (any case) directly in ``path``."""
    if not os.path.exists(path):
        raise MigrationError(f"path {path!r} does not exist: set path to the directory of the migrations.")
    if not os.path.isdir(path):
        raise MigrationError(
            f"path {path!r} is not a directory: set path to the directory of the migrations."
        )
    files: dict[str, bytes] = {}
    for entry in sorted(os.listdir(path)):
        full = os.path.join(path, entry)
        if entry.lower().endswith(".sql") and os.path.isfile(full):
            with open(full, "rb") as handle:
                files[entry] = handle.read()
    return files


def parse_migrations(files: dict[str, bytes]) -> list[Migration]:
    """Validate names and contents; return migrations ordered by numeric version."""
    by_version: dict[int, Migration] = {}
    for file_name in sorted(files):
        version, _slug = parse_file_name(file_name)
        content = files[file_name]
        if version in by_version:
            other = by_version[version].file_name
            raise MigrationError(
                f"Migration files {other!r} and {file_name!r} have the same version {version}: every "
                "version must be unique; renumber one of them (above the newest applied version).",
                file=file_name,
            )
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MigrationError(
                f"Migration file {file_name!r} is not valid UTF-8 ({exc.reason} at byte {exc.start}): "
                "save it as UTF-8.",
                file=file_name,
            ) from exc
        statements = scan_statements(text)
        if not statements:
            raise MigrationError(
                f"Migration file {file_name!r} is empty (no SQL statements, only whitespace or comments): "
                "add its SQL or delete the file.",
                file=file_name,
            )
        for statement in statements:
            if is_transaction_control(statement.words):
                raise MigrationError(
                    f"Migration file {file_name!r} line {statement.line}: {' '.join(statement.words[:2])} "
                    "is transaction control, which a migration must not contain: the module runs all pending "
                    "migrations in one transaction. Remove BEGIN/COMMIT/ROLLBACK from the file.",
                    file=file_name,
                )
        by_version[version] = Migration(version, file_name, checksum(content), text)
    return [by_version[v] for v in sorted(by_version)]


def plan_migrations(migrations: list[Migration], applied: list[AppliedMigration]) -> Plan:
    """Compare files with the history; raise on drift, gaps or missing files, else list what is pending."""
    files = {m.version: m for m in migrations}
    applied = sorted(applied, key=lambda a: a.version)
    for record in applied:
        migration = files.get(record.version)
        if migration is None:
            raise MigrationError(
                f"Applied migration version {record.version} ({record.file_name}) has no file in path: "
                "applied migrations are immutable; restore the file. Its changes are in the database.",
                file=record.file_name,
            )
        if migration.file_name != record.file_name:
            raise MigrationError(
                f"Migration {migration.file_name} has version {record.version}, which was applied from file "
                f"{record.file_name}: applied migrations are immutable; rename the file back and add a new "
                "migration for new changes.",
                file=migration.file_name,
            )
        if migration.checksum != record.checksum:
            raise MigrationError(
                f"Migration {migration.file_name} was changed after it was applied (checksum now "
                f"{short(migration.checksum)}, recorded {short(record.checksum)}): applied migrations are "
                "immutable; restore the file and add a new migration instead.",
                file=migration.file_name,
                checksum=migration.checksum,
                recorded_checksum=record.checksum,
            )
    done = {a.version for a in applied}
    newest = max(done, default=None)
    pending = [m for m in migrations if m.version not in done]
    if newest is not None:
        late = [m for m in pending if m.version < newest]
        if late:
            raise MigrationError(
                f"Migration {late[0].file_name} is older than the newest applied version {newest} and would "
                f"run out of order: give it a version above {newest}.",
                file=late[0].file_name,
            )
    return Plan(migrations=migrations, applied=applied, pending=pending)


def change_tracker(plan: Plan) -> ChangeTracker:
    tracker = ChangeTracker()
    before = [a.file_name for a in plan.applied]
    tracker.add("applied", before, before + [m.file_name for m in plan.pending])
    return tracker


# --- SQL scanning ---------------------------------------------------------------------------------------
# Enough of PostgreSQL's lexical rules (as psql splits a script) to find top-level statements: comments
# (nested /* */), quoted strings and identifiers, E'' escapes, dollar quoting, parentheses (multi-action
# rules) and SQL-standard ``BEGIN ATOMIC ... END`` bodies.

_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR_RE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass
class Statement:
    line: int
    words: list[str] = field(default_factory=list)


def _is_ident_char(char: str) -> bool:
    return char.isalnum() or char in ("_", "$")


def _end_of_quoted(text: str, start: int, quote: str, backslash: bool) -> int:
    """Index just past the closing ``quote`` of the literal opening at ``start`` (or len(text))."""
    i = start + 1
    while i < len(text):
        char = text[i]
        if backslash and char == "\\":
            i += 2
            continue
        if char == quote:
            if text.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def _end_of_block_comment(text: str, start: int) -> int:
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def scan_statements(text: str) -> list[Statement]:
    """Split SQL into top-level statements, keeping each one's line and its words outside literals."""
    statements: list[Statement] = []
    current: Statement | None = None
    atomic_depth = paren_depth = 0
    i, line = 0, 1
    while i < len(text):
        char = text[i]
        start = i
        if char.isspace():
            i += 1
        elif text.startswith("--", i):
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
        elif text.startswith("/*", i):
            i = _end_of_block_comment(text, i)
        elif char == ";" and atomic_depth == 0 and paren_depth == 0:
            if current is not None:
                statements.append(current)
            current = None
            i += 1
        else:
            if current is None:
                current = Statement(line)
            prev = text[i - 1] if i else " "
            ident_before = _is_ident_char(prev)
            dollar = _DOLLAR_RE.match(text, i) if char == "$" and not ident_before else None
            word = _WORD_RE.match(text, i)
            if char == "'":
                escapes = prev in ("e", "E") and not (i > 1 and _is_ident_char(text[i - 2]))
                i = _end_of_quoted(text, i, "'", escapes)
            elif char == '"':
                i = _end_of_quoted(text, i, '"', False)
            elif dollar is not None:
                close = text.find(dollar.group(0), dollar.end())
                i = len(text) if close < 0 else close + len(dollar.group(0))
            elif char in "()":
                paren_depth = max(0, paren_depth + (1 if char == "(" else -1))
                i += 1
            elif word is not None and not ident_before:
                upper = word.group(0).upper()
                words = current.words
                if atomic_depth:
                    atomic_depth += {"CASE": 1, "END": -1}.get(upper, 0)
                elif upper == "ATOMIC" and words[-1:] == ["BEGIN"] and words[:1] == ["CREATE"]:
                    atomic_depth = 1
                words.append(upper)
                i = word.end()
            else:
                i += 1
        line += text.count("\n", start, i)
    if current is not None:
        statements.append(current)
    return statements


def is_transaction_control(words: list[str]) -> bool:
    """True for statements that would end or replace the module's transaction (savepoints are fine)."""
    first, rest = (words[0], words[1:3]) if words else ("", [])
    if first in ("BEGIN", "COMMIT", "END", "ABORT"):
        return True
    if first == "ROLLBACK":
        return "TO" not in rest
    if first in ("START", "PREPARE"):
        return rest[:1] == ["TRANSACTION"]
    return False


# --- database side -----------------------------------------------------------------------------------------


def _history_ident(table: str) -> Any:
    return sql.Identifier(HISTORY_SCHEMA, table)


def history_exists(cursor: Any, table: str) -> bool:
    cursor.execute(
        "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s",
        (HISTORY_SCHEMA, table),
    )
    return cursor.fetchone() is not None


def read_history(cursor: Any, table: str) -> list[AppliedMigration]:
    cursor.execute(
        sql.SQL("SELECT version, file_name, checksum FROM {} ORDER BY version").format(_history_ident(table))
    )
    return [AppliedMigration(int(v), f, c) for v, f, c in cursor.fetchall()]


def create_history(cursor: Any, table: str) -> None:
    cursor.execute(
        sql.SQL(
            "CREATE TABLE {} ("
            " version bigint PRIMARY KEY,"
            " file_name text NOT NULL UNIQUE,"
            " checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(),"
            " applied_by text NOT NULL DEFAULT current_user,"
            " execution_ms integer NOT NULL)"
        ).format(_history_ident(table))
    )
    cursor.execute(
        sql.SQL("COMMENT ON TABLE {} IS %s").format(_history_ident(table)),
        ("Applied schema migrations, written by the prism_pg_schema Ansible module. Do not edit.",),
    )


def _fail_sql(migration: Migration, exc: Exception) -> MigrationError:
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None)
    where = ""
    if position and str(position).isdigit():
        where = " line {}".format(migration.sql.count("\n", 0, int(position) - 1) + 1)
    return MigrationError(
        f"Migration {migration.file_name}{where} failed: {pg_error_text(exc)}. Nothing was applied: all "
        "pending migrations were rolled back. Fix the file and run again.",
        file=migration.file_name,
        sqlstate=getattr(exc, "pgcode", None),
        exception=traceback.format_exc(),
    )


def apply_plan(conn: Any, migrations: list[Migration], table: str, check_mode: bool) -> dict[str, Any]:
    """Plan against the history under the advisory lock, run pending files, commit or (check mode) roll back.

    Returns the module result; raises MigrationError after a full rollback.
    """
    # The lock wait must not pin the snapshot: in READ COMMITTED each statement after the lock sees the
    # history a concurrent run committed while we waited.
    conn.set_session(isolation_level=psycopg2.extensions.ISOLATION_LEVEL_READ_COMMITTED, autocommit=False)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
            has_history = history_exists(cursor, table)
            try:
                applied = read_history(cursor, table) if has_history else []
            except psycopg2.Error as exc:
                raise MigrationError(
                    f"Could not read the history table {HISTORY_SCHEMA}.{table}: {pg_error_text(exc)}. "
                    "Point history_table at the table this module created, or at a name not in use.",
                    exception=traceback.format_exc(),
                ) from exc
            plan = plan_migrations(migrations, applied)
            done: list[str] = []
            if plan.pending:
                if not has_history:
                    create_history(cursor, table)
                for migration in plan.pending:
                    _run_one(conn, cursor, migration, table)
                    done.append(migration.file_name)
        if check_mode:
            conn.rollback()
            done = []
        else:
            conn.commit()
    except BaseException:
        _rollback_quietly(conn)
        raise
    tracker = change_tracker(plan)
    return {
        "changed": tracker.changed,
        "applied": done,
        "pending": [m.file_name for m in plan.pending],
        "current_version": plan.target_version if done else plan.current_version,
        "migrations": len(plan.migrations),
        "diff": tracker.diff(),
    }


def _rollback_quietly(conn: Any) -> None:
    """Roll back after a failure without masking it (the connection may already be gone)."""
    with contextlib.suppress(psycopg2.Error):
        conn.rollback()


def _run_one(conn: Any, cursor: Any, migration: Migration, table: str) -> None:
    started = time.monotonic()
    try:
        cursor.execute(migration.sql)
    except psycopg2.Error as exc:
        raise _fail_sql(migration, exc) from exc
    if conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_INTRANS:
        raise MigrationError(
            f"Migration {migration.file_name} ended the module's transaction: remove transaction control "
            "(COMMIT/ROLLBACK) from the file. Statements before it may have been committed: check the "
            "database.",
            file=migration.file_name,
        )
    elapsed_ms = int((time.monotonic() - started) * 1000)
    cursor.execute(
        sql.SQL("INSERT INTO {} (version, file_name, checksum, execution_ms) VALUES (%s, %s, %s, %s)").format(
            _history_ident(table)
        ),
        (migration.version, migration.file_name, migration.checksum, elapsed_ms),
    )
