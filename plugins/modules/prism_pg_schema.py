#!/usr/bin/python
# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prism_pg_schema
short_description: Apply versioned SQL migrations to a PostgreSQL database
description:
  - Applies the migrations that the database has not seen yet, in version order, and records each in a
    history table with its SHA-256 checksum. The migrations are the SQL files in O(path) on the managed host,
    or the files of O(sources), which the play reads on the control node (nothing is copied to the host).
  - File names are C(V<version>__<slug>.sql), for example C(V001__orch_tables.sql); the version has three or
    more digits and orders the files numerically, the slug is lower-case letters, digits and C(_).
  - All pending migrations run in one transaction together with their history rows, under a transaction-level
    advisory lock so concurrent runs serialise. Any error rolls everything back.
  - Applied migrations are immutable. A changed, renamed or deleted applied file, a malformed file name, a
    duplicate version, an empty file, transaction control in a file or a new file older than the newest
    applied version fails the module before anything is written.
options:
  path:
    description:
      - Directory on the managed host holding the migration files. Only files ending in C(.sql) are
        considered; other files are ignored.
      - Exactly one of O(path) and O(sources) is required.
    type: path
  sources:
    description:
      - The migrations themselves, one entry per file, for example from the C(ansible.builtin.file) lookup on
        the control node with C(rstrip=false), so that the checksum covers the file's exact text.
      - The postgres role passes the project's C(files/migrations/postgres) this way.
    type: list
    elements: dict
    suboptions:
      name:
        description: The file name, C(V<version>__<slug>.sql).
        type: str
        required: true
      content:
        description: The file's SQL text, UTF-8.
        type: str
        required: true
  history_table:
    description:
      - Name of the history table in schema C(public). Created on the first run that applies a migration.
    type: str
    default: prism_schema_migrations
extends_documentation_fragment:
  - prism_postgres
attributes:
  check_mode:
    description: >-
      Computes the pending migrations and runs their SQL in a transaction that is always rolled back, so SQL
      errors surface in check mode while nothing changes.
    support: full
  diff_mode:
    description: Returns the applied migration file names before and after the run.
    support: full
notes:
  - Migrations must not contain C(BEGIN), C(COMMIT) or C(ROLLBACK), nor statements that cannot run inside a
    transaction block (C(CREATE INDEX CONCURRENTLY), C(VACUUM), C(CREATE DATABASE)).
  - In check mode the pending SQL holds its locks until the rollback, as a real run would.
author:
  - PRISM orchestration team
"""

EXAMPLES = r"""
- name: Apply the orchestration schema
  prism_pg_schema:
    path: /opt/prism/migrations/postgres
    login_host: 127.0.0.1
    login_port: 5432
    login_user: postgres
    login_password: "{{ postgres_superuser_password }}"
    login_db: prism

- name: Apply the project's migrations, read on the control node
  prism_pg_schema:
    sources:
      - name: V001__orch_tables.sql
        content: "{{ lookup('ansible.builtin.file', 'files/migrations/postgres/V001__orch_tables.sql', rstrip=false) }}"
    login_db: prism
    login_password: "{{ postgres_superuser_password }}"

- name: Show what would be applied
  prism_pg_schema:
    path: /opt/prism/migrations/postgres
    login_db: prism
    login_password: "{{ postgres_superuser_password }}"
  check_mode: true
  diff: true
  register: __postgres_schema_plan
"""

RETURN = r"""
applied:
  description: Migration files applied by this run, in order. Empty in check mode.
  returned: success
  type: list
  elements: str
  sample: [V001__orch_tables.sql, V002__orch_app_privileges.sql]
pending:
  description: >-
    Migration files that were pending when the run started, in order: what this run applied, or in check mode
    what it would apply.
  returned: success
  type: list
  elements: str
  sample: [V002__orch_app_privileges.sql]
current_version:
  description: Newest applied version after this run (in check mode, before it); null when none is applied.
  returned: success
  type: int
  sample: 2
migrations:
  description: Number of migration files found in O(path) or given in O(sources).
  returned: success
  type: int
  sample: 2
file:
  description: Migration file the failure is about.
  returned: failure, when it concerns one file
  type: str
  sample: V003__add_index.sql
sqlstate:
  description: PostgreSQL SQLSTATE of the error raised by a migration.
  returned: failure, when a migration's SQL failed
  type: str
  sample: "42601"
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.prism_pg_schema import (  # noqa: E402
    MigrationError,
    apply_plan,
    parse_migrations,
    read_migration_dir,
    validate_history_table,
)
from ansible.module_utils.prism_postgres import connect, ensure_psycopg2, postgres_argument_spec  # noqa: E402


def argument_spec() -> dict:
    spec = postgres_argument_spec()
    spec.update(
        path={"type": "path"},
        sources={
            "type": "list",
            "elements": "dict",
            "options": {
                "name": {"type": "str", "required": True},
                "content": {"type": "str", "required": True},
            },
        },
        history_table={"type": "str", "default": "prism_schema_migrations"},
    )
    return spec


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_one_of=[("path", "sources")],
        mutually_exclusive=[("path", "sources")],
    )
    ensure_psycopg2(module)
    try:
        validate_history_table(module.params["history_table"])
        if module.params["sources"] is not None:
            where = "sources"
            names = [s["name"] for s in module.params["sources"]]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise MigrationError(f"sources names {', '.join(twice)} more than once: give each file once.")
            files = {s["name"]: s["content"].encode("utf-8") for s in module.params["sources"]}
        else:
            where = module.params["path"]
            files = read_migration_dir(where)
        migrations = parse_migrations(files)
        if not migrations:
            module.warn(f"No migration files in {where}: nothing to apply.")
        conn = connect(module)
        try:
            result = apply_plan(conn, migrations, module.params["history_table"], module.check_mode)
        finally:
            conn.close()
    except MigrationError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
