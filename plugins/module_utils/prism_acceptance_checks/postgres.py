# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL checks: CRUD on every orch_* table as the app user, and the foreign keys with their delete rules
(in a transaction that is rolled back)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from ansible.module_utils.prism_acceptance import Namespace, expect
from ansible.module_utils.prism_acceptance_checks.stack import Stack
from ansible.module_utils.prism_kafka_dlq import AGENT_TYPES

FK_VIOLATION = "23503"
CHECK_VIOLATION = "23514"


def pg_error_code(cur: Any, sql: str, args: tuple[Any, ...]) -> str | None:
    """Run ``sql`` in a savepoint; return the SQLSTATE it failed with (None when it succeeded)."""
    import psycopg2

    cur.execute("SAVEPOINT prism_verify")
    try:
        cur.execute(sql, args)
    except psycopg2.Error as exc:
        cur.execute("ROLLBACK TO SAVEPOINT prism_verify")
        return exc.pgcode
    cur.execute("RELEASE SAVEPOINT prism_verify")
    return None


def one(cur: Any, sql: str, args: tuple[Any, ...] = ()) -> Any:
    cur.execute(sql, args)
    row = cur.fetchone()
    return row[0] if row and len(row) == 1 else row


def insert_chain(cur: Any, ns: Namespace, label: str) -> dict[str, Any]:
    """query -> task -> plan -> one subtask per agent type, a violation of the first subtask, feedback on
    the query and on the task, and a knowledge row; returns their ids."""
    from psycopg2.extras import Json

    ids: dict[str, Any] = {}
    ids["query"] = one(
        cur,
        "INSERT INTO public.orch_user_query (tenant_id, user_id, query_text, parsed_intent) "
        "VALUES (%s, %s, %s, %s) RETURNING query_id",
        (ns.tenant, ns.user_id, f"{label}: check line 3 pressure", Json({"intent": "diagnose", "line": 3})),
    )
    ids["task"] = one(
        cur,
        "INSERT INTO public.orch_task_manage (tenant_id, query_id, user_id, title) "
        "VALUES (%s, %s, %s, %s) RETURNING task_id",
        (ns.tenant, ids["query"], ns.user_id, f"{label} task"),
    )
    ids["plan"] = one(
        cur,
        "INSERT INTO public.orch_execution_plan (tenant_id, task_id, task_graph) "
        "VALUES (%s, %s, %s) RETURNING plan_id",
        (ns.tenant, ids["task"], Json({"nodes": list(AGENT_TYPES), "edges": []})),
    )
    ids["subtasks"] = {}
    for seq, agent in enumerate(AGENT_TYPES):
        ids["subtasks"][agent] = one(
            cur,
            "INSERT INTO public.orch_agent_subtask (tenant_id, plan_id, agent_type, sequence_no) "
            "VALUES (%s, %s, %s, %s) RETURNING subtask_id",
            (ns.tenant, ids["plan"], agent, seq),
        )
    ids["violation"] = one(
        cur,
        "INSERT INTO public.orch_constraint_violation (tenant_id, task_id, subtask_id, constraint_name, severity) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING violation_id",
        (ns.tenant, ids["task"], ids["subtasks"][AGENT_TYPES[0]], "max_pressure", "warning"),
    )
    ids["feedback_query"] = one(
        cur,
        "INSERT INTO public.orch_user_feedback (tenant_id, query_id, user_id, rating) "
        "VALUES (%s, %s, %s, %s) RETURNING feedback_id",
        (ns.tenant, ids["query"], ns.user_id, 4),
    )
    ids["feedback_task"] = one(
        cur,
        "INSERT INTO public.orch_user_feedback (tenant_id, task_id, user_id, rating) "
        "VALUES (%s, %s, %s, %s) RETURNING feedback_id",
        (ns.tenant, ids["task"], ns.user_id, 5),
    )
    ids["knowledge"] = one(
        cur,
        "INSERT INTO public.orch_knowledge_metadata (tenant_id, source, title, domain, checksum) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING knowledge_id",
        (
            ns.tenant,
            "prism_verify",
            f"{label} knowledge",
            "verify",
            hashlib.sha256(label.encode()).hexdigest(),
        ),
    )
    return ids


# table -> (primary key, column updated, new value)
CRUD_UPDATES = {
    "orch_user_query": ("query_id", "status", "planned"),
    "orch_task_manage": ("task_id", "status", "running"),
    "orch_execution_plan": ("plan_id", "status", "approved"),
    "orch_agent_subtask": ("subtask_id", "status", "queued"),
    "orch_constraint_violation": ("violation_id", "resolution", "acknowledged by the acceptance suite"),
    "orch_user_feedback": ("feedback_id", "comment", "acceptance suite"),
    "orch_knowledge_metadata": ("knowledge_id", "domain", "verify-updated"),
}


def check_postgresql_basic(stack: Stack) -> str:
    """Create, read, update and delete on every orch_* table, committed for real, as the app user."""
    ns = stack.ns
    with stack.pg().cursor() as cur:
        ids = insert_chain(cur, ns, "postgresql_basic")
        row_of = {
            "orch_user_query": ids["query"],
            "orch_task_manage": ids["task"],
            "orch_execution_plan": ids["plan"],
            "orch_agent_subtask": ids["subtasks"][AGENT_TYPES[0]],
            "orch_constraint_violation": ids["violation"],
            "orch_user_feedback": ids["feedback_task"],
            "orch_knowledge_metadata": ids["knowledge"],
        }
        for table, (pk, column, value) in CRUD_UPDATES.items():
            sql_where = f"FROM public.{table} WHERE {pk} = %s AND tenant_id = %s"
            args = (row_of[table], ns.tenant)
            before = one(cur, f"SELECT updated_at {sql_where}", args)
            expect(before is not None, f"{table}: the inserted row {row_of[table]} cannot be read back")
            cur.execute(
                f"UPDATE public.{table} SET {column} = %s WHERE {pk} = %s AND tenant_id = %s", (value, *args)
            )
            expect(cur.rowcount == 1, f"{table}: UPDATE changed {cur.rowcount} rows, expected 1")
            got, updated = one(cur, f"SELECT {column}, updated_at {sql_where}", args)
            expect(got == value, f"{table}.{column} reads {got!r} after the update, expected {value!r}")
            expect(updated > before, f"{table}.updated_at did not move on UPDATE (trigger missing?)")
        # Delete child -> parent, each row on its own, and read that it is gone.
        order = [
            ("orch_user_feedback", ids["feedback_task"]),
            ("orch_user_feedback", ids["feedback_query"]),
            ("orch_constraint_violation", ids["violation"]),
            *[("orch_agent_subtask", s) for s in ids["subtasks"].values()],
            ("orch_execution_plan", ids["plan"]),
            ("orch_task_manage", ids["task"]),
            ("orch_user_query", ids["query"]),
            ("orch_knowledge_metadata", ids["knowledge"]),
        ]
        for table, row_id in order:
            pk = CRUD_UPDATES[table][0]
            cur.execute(f"DELETE FROM public.{table} WHERE {pk} = %s AND tenant_id = %s", (row_id, ns.tenant))
            expect(cur.rowcount == 1, f"{table}: DELETE of {row_id} removed {cur.rowcount} rows, expected 1")
            left = one(cur, f"SELECT count(*) FROM public.{table} WHERE {pk} = %s", (row_id,))
            expect(left == 0, f"{table}: row {row_id} still readable after DELETE")
    return (
        f"insert, select, update (updated_at trigger), delete on {len(CRUD_UPDATES)} tables as the app user"
    )


def check_postgresql_relationships(stack: Stack) -> str:
    """Foreign keys and their delete rules along query -> task -> plan -> subtask, feedback, violations.
    Runs in one transaction that is rolled back: the rules act immediately, nothing is kept."""
    ns = stack.ns
    conn = stack.pg()
    conn.autocommit = False
    proven: list[str] = []
    try:
        with conn.cursor() as cur:
            ghost = str(uuid.uuid4())
            orphans = {
                "task without its query": (
                    "INSERT INTO public.orch_task_manage (tenant_id, query_id, user_id, title) VALUES (%s, %s, %s, 'x')",
                    (ns.tenant, ghost, ns.user_id),
                ),
                "plan without its task": (
                    "INSERT INTO public.orch_execution_plan (tenant_id, task_id, task_graph) VALUES (%s, %s, '{}')",
                    (ns.tenant, ghost),
                ),
                "subtask without its plan": (
                    "INSERT INTO public.orch_agent_subtask (tenant_id, plan_id, agent_type) VALUES (%s, %s, 'control')",
                    (ns.tenant, ghost),
                ),
                "violation without its task": (
                    "INSERT INTO public.orch_constraint_violation (tenant_id, task_id, constraint_name, severity) "
                    "VALUES (%s, %s, 'x', 'info')",
                    (ns.tenant, ghost),
                ),
                "feedback without its task": (
                    "INSERT INTO public.orch_user_feedback (tenant_id, task_id, user_id) VALUES (%s, %s, %s)",
                    (ns.tenant, ghost, ns.user_id),
                ),
            }
            for what, (sql, args) in orphans.items():
                code = pg_error_code(cur, sql, args)
                expect(
                    code == FK_VIOLATION, f"{what}: SQLSTATE {code}, expected {FK_VIOLATION} (foreign key)"
                )
            proven.append(f"{len(orphans)} orphan inserts refused")
            code = pg_error_code(
                cur,
                "INSERT INTO public.orch_user_feedback (tenant_id, user_id) VALUES (%s, %s)",
                (ns.tenant, ns.user_id),
            )
            expect(
                code == CHECK_VIOLATION, f"feedback on nothing: SQLSTATE {code}, expected {CHECK_VIOLATION}"
            )

            ids = insert_chain(cur, ns, "postgresql_relationships")
            first = ids["subtasks"][AGENT_TYPES[0]]
            code = pg_error_code(
                cur, "DELETE FROM public.orch_user_query WHERE query_id = %s", (ids["query"],)
            )
            expect(code == FK_VIOLATION, f"deleting a query with tasks: SQLSTATE {code}, expected RESTRICT")
            code = pg_error_code(
                cur, "DELETE FROM public.orch_task_manage WHERE task_id = %s", (ids["task"],)
            )
            expect(
                code == FK_VIOLATION, f"deleting a task with violations: SQLSTATE {code}, expected RESTRICT"
            )
            proven.append("RESTRICT query<-task, task<-violation")

            cur.execute("DELETE FROM public.orch_agent_subtask WHERE subtask_id = %s", (first,))
            ref = one(
                cur,
                "SELECT subtask_id IS NULL FROM public.orch_constraint_violation WHERE violation_id = %s",
                (ids["violation"],),
            )
            expect(ref is True, "deleting a subtask did not SET NULL its violation's subtask_id")
            proven.append("SET NULL violation.subtask_id")

            cur.execute(
                "DELETE FROM public.orch_constraint_violation WHERE violation_id = %s", (ids["violation"],)
            )
            cur.execute("DELETE FROM public.orch_task_manage WHERE task_id = %s", (ids["task"],))
            plans = one(
                cur, "SELECT count(*) FROM public.orch_execution_plan WHERE task_id = %s", (ids["task"],)
            )
            subtasks = one(
                cur, "SELECT count(*) FROM public.orch_agent_subtask WHERE plan_id = %s", (ids["plan"],)
            )
            task_feedback = one(
                cur, "SELECT count(*) FROM public.orch_user_feedback WHERE task_id = %s", (ids["task"],)
            )
            expect(
                (plans, subtasks, task_feedback) == (0, 0, 0),
                f"deleting a task left plans={plans}, subtasks={subtasks}, task feedback={task_feedback} (CASCADE)",
            )
            query_feedback = one(
                cur, "SELECT count(*) FROM public.orch_user_feedback WHERE query_id = %s", (ids["query"],)
            )
            expect(query_feedback == 1, "the query's feedback went with the task")
            cur.execute("DELETE FROM public.orch_user_query WHERE query_id = %s", (ids["query"],))
            query_feedback = one(
                cur, "SELECT count(*) FROM public.orch_user_feedback WHERE query_id = %s", (ids["query"],)
            )
            expect(query_feedback == 0, "deleting a query left its feedback (CASCADE)")
            proven.append("CASCADE task->plan->subtask, task->feedback, query->feedback")
    finally:
        conn.rollback()
        conn.autocommit = True
    return "; ".join(proven) + " (in a transaction, rolled back)"
