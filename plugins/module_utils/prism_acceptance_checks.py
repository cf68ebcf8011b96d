# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PRISM acceptance checks against the deployed services, as the application would use them: PostgreSQL
as the app user, Redis as the app user (settings read as the read-only exporter user), Kafka producers with
acks=all and the run's own consumer group, Weaviate with its API key, Prometheus and Alertmanager over HTTP.

Every check writes only inside the run's namespace (prism_acceptance.Namespace) and removes what it wrote;
``Stack.cleanup`` removes it again whatever happened, and ``Stack.snapshot`` counts what a run may touch.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.prism_acceptance import (
    NAMESPACE_PREFIX,
    ORCH_TABLES,
    TENANT_DELETE_ORDER,
    CheckFailed,
    Namespace,
    NotRunHere,
    Snapshot,
    concrete_expr,
    dashboard_queries,
    expect,
)
from ansible.module_utils.prism_kafka_dlq import AGENT_TYPES, DlqWorker, Rejected, dlq_topic_for

FK_VIOLATION = "23503"
CHECK_VIOLATION = "23514"
HEADER_RUN = "prism.verify.run"
HEADER_REJECT = "prism.verify.reject"
KAFKA_WAIT_S = 30
HTTP_TIMEOUT_S = 10


@dataclass
class Services:
    """Connection settings of the deployed services; a service that is not deployed has ``<svc>_absent``
    set to the reason."""

    pg: dict[str, Any]
    redis: dict[str, Any] | None
    redis_absent: str
    kafka: dict[str, Any] | None
    kafka_absent: str
    kafka_topics: list[str]
    weaviate: dict[str, Any] | None
    weaviate_absent: str
    monitoring: dict[str, Any] | None
    monitoring_absent: str
    grafana_absent: str


@dataclass
class Stack:
    """Open clients plus what the run produced; closed and cleaned up by ``close``."""

    services: Services
    ns: Namespace
    produced: dict[str, int] = field(default_factory=dict)
    extra_rows: list[tuple[str, str, str]] = field(default_factory=list)
    _pg: Any = None
    _redis: Any = None
    _redis_stats: Any = None
    _producer: Any = None
    _weaviate: Any = None

    # -- clients -------------------------------------------------------------------------------------

    def pg(self) -> Any:
        if self._pg is None:
            import psycopg2

            self._pg = psycopg2.connect(**self.services.pg)
            self._pg.autocommit = True
        return self._pg

    def redis(self) -> Any:
        """The app user, as the application connects."""
        if self._redis is None:
            self._redis = self._redis_client("user", "password")
        return self._redis

    def redis_stats(self) -> Any:
        """The read-only exporter user: CONFIG GET and INFO, which the app user may not run."""
        if self._redis_stats is None:
            self._redis_stats = self._redis_client("stats_user", "stats_password")
        return self._redis_stats

    def _redis_client(self, user: str, password: str) -> Any:
        if self.services.redis is None:
            raise NotRunHere(self.services.redis_absent)
        import redis

        conf = self.services.redis
        return redis.Redis(
            host=conf["host"],
            port=conf["port"],
            username=conf[user],
            password=conf[password],
            decode_responses=True,
            socket_timeout=10,
        )

    def kafka_conf(self) -> dict[str, Any]:
        if self.services.kafka is None:
            raise NotRunHere(self.services.kafka_absent)
        return dict(self.services.kafka)

    def producer(self) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(acks="all", **self.kafka_conf())
        return self._producer

    def consumer(self) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(
            group_id=self.ns.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **self.kafka_conf(),
        )

    def admin(self) -> Any:
        from kafka.admin import KafkaAdminClient

        return KafkaAdminClient(**self.kafka_conf())

    def weaviate(self) -> Any:
        if self.services.weaviate is None:
            raise NotRunHere(self.services.weaviate_absent)
        if self._weaviate is None:
            import weaviate
            from weaviate.classes.init import Auth

            conf = self.services.weaviate
            self._weaviate = weaviate.connect_to_custom(
                http_host=conf["host"],
                http_port=conf["port"],
                http_secure=False,
                grpc_host=conf["host"],
                grpc_port=conf["grpc_port"],
                grpc_secure=False,
                auth_credentials=Auth.api_key(conf["api_key"]),
            )
        return self._weaviate

    # -- Kafka helpers ---------------------------------------------------------------------------------

    def produce(self, topic: str, key: str, value: dict[str, Any], reject: bool = False) -> tuple[int, int]:
        """Send one message with acks=all and wait for the broker; returns (partition, offset)."""
        headers = [(HEADER_RUN, self.ns.run_id.encode())]
        if reject:
            headers.append((HEADER_REJECT, b"1"))
        future = self.producer().send(
            topic, key=key.encode(), value=json.dumps(value).encode(), headers=headers
        )
        meta = future.get(timeout=KAFKA_WAIT_S)
        self.produced[topic] = self.produced.get(topic, 0) + 1
        return meta.partition, meta.offset

    def consumer_at(self, where: list[tuple[str, int, int]]) -> Any:
        """A consumer of the run's group assigned to the partitions of ``where`` (topic, partition, offset),
        each positioned at the first of those offsets."""
        from kafka import TopicPartition

        starts: dict[Any, int] = {}
        for topic, partition, offset in where:
            tp = TopicPartition(topic, partition)
            starts[tp] = min(offset, starts.get(tp, offset))
        consumer = self.consumer()
        consumer.assign(list(starts))
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        return consumer

    def consume_exact(self, wanted: dict[tuple[str, int, int], bytes]) -> dict[tuple[str, int, int], Any]:
        """Read the messages at (topic, partition, offset) with the run's consumer group, commit the
        group's offsets, and return the records; fails naming those that did not arrive."""

        consumer = self.consumer_at(list(wanted))
        found: dict[tuple[str, int, int], Any] = {}
        try:
            deadline = time.monotonic() + KAFKA_WAIT_S
            while len(found) < len(wanted) and time.monotonic() < deadline:
                for tp, records in consumer.poll(timeout_ms=1000).items():
                    for record in records:
                        where = (tp.topic, tp.partition, record.offset)
                        if where in wanted:
                            found[where] = record
            consumer.commit()
        finally:
            consumer.close()
        missing = sorted(set(wanted) - set(found))
        expect(not missing, f"not consumed within {KAFKA_WAIT_S}s: {missing}")
        for where, record in found.items():
            expect(record.key == wanted[where], f"{where}: key {record.key!r}, expected {wanted[where]!r}")
        return found

    def end_offsets(self, topics: list[str]) -> dict[str, int]:
        """Sum of the partitions' end offsets per topic."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(enable_auto_commit=False, **self.kafka_conf())
        try:
            parts = [
                TopicPartition(topic, p)
                for topic in topics
                for p in sorted(consumer.partitions_for_topic(topic) or [])
            ]
            ends = consumer.end_offsets(parts)
        finally:
            consumer.close()
        totals = dict.fromkeys(topics, 0)
        for tp, end in ends.items():
            totals[tp.topic] += end
        return totals

    # -- namespace: counts and cleanup -----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Count what a run may touch. A service that cannot be counted (down, wrong password) is recorded
        as an error of the snapshot: its checks fail on their own, and no_trace fails naming it."""
        snap = Snapshot()
        counters: list[tuple[str, bool, str, Callable[[], Any]]] = [
            ("PostgreSQL", True, "", self.pg_counts),
            (
                "Redis",
                self.services.redis is not None,
                self.services.redis_absent,
                lambda: int(self.redis().dbsize()),
            ),
            (
                "Weaviate",
                self.services.weaviate is not None,
                self.services.weaviate_absent,
                self.weaviate_count,
            ),
            (
                "Kafka",
                self.services.kafka is not None,
                self.services.kafka_absent,
                lambda: self.end_offsets(self.services.kafka_topics),
            ),
        ]
        fields = {"PostgreSQL": "pg_rows", "Redis": "redis_keys", "Weaviate": "weaviate_objects"}
        for service, deployed, absent, count in counters:
            if not deployed:
                snap.notes.append(f"{service} not counted: {absent}")
                continue
            try:
                setattr(snap, fields.get(service, "kafka_end_offsets"), count())
            except Exception as exc:  # the service's own checks report it; the snapshot names it
                snap.errors.append(f"{service} could not be counted ({type(exc).__name__}: {exc})")
        return snap

    def pg_counts(self) -> dict[str, int]:
        counts = {}
        with self.pg().cursor() as cur:
            for table in ORCH_TABLES:
                cur.execute(f"SELECT count(*) FROM public.{table}")  # names from a constant list
                counts[table] = cur.fetchone()[0]
        return counts

    def weaviate_count(self) -> int:
        conf = self.services.weaviate or {}
        client = self.weaviate()
        if not client.collections.exists(conf["collection"]):
            return 0
        result = client.collections.use(conf["collection"]).aggregate.over_all(total_count=True)
        return int(result.total_count or 0)

    def delete_tenant_rows(self, cur: Any) -> int:
        removed = 0
        for table in TENANT_DELETE_ORDER:
            cur.execute(f"DELETE FROM public.{table} WHERE tenant_id = %s", (self.ns.tenant,))
            removed += cur.rowcount
        return removed

    def cleanup(self) -> tuple[list[str], list[str]]:
        """Remove everything of this run, service by service even when one fails. Returns what was still
        there (empty after clean checks) and what could not be cleaned."""
        leftovers: list[str] = []
        errors: list[str] = []
        for service, clean in (
            ("PostgreSQL", self._clean_pg),
            ("Redis", self._clean_redis),
            ("Kafka", self._clean_kafka),
        ):
            try:
                leftovers.extend(clean())
            except Exception as exc:  # reported by no_trace, after the other services were cleaned
                errors.append(f"{service} could not be cleaned ({type(exc).__name__}: {exc})")
        return leftovers, errors

    def _clean_pg(self) -> list[str]:
        with self.pg().cursor() as cur:
            removed = self.delete_tenant_rows(cur)
        return [f"{removed} PostgreSQL rows of tenant {self.ns.tenant}"] if removed else []

    def _clean_redis(self) -> list[str]:
        if self.services.redis is None:
            return []
        keys = list(self.redis().scan_iter(match=self.ns.key_prefix + "*", count=1000))
        if keys:
            self.redis().delete(*keys)
        return [f"{len(keys)} Redis keys under {self.ns.key_prefix}"] if keys else []

    def _clean_kafka(self) -> list[str]:
        if self.services.kafka is None:
            return []
        admin = self.admin()
        try:
            if self.group_exists(admin):
                result = admin.delete_groups([self.ns.group_id])
                expect(
                    result.get(self.ns.group_id) == "OK",
                    f"deleting consumer group {self.ns.group_id}: {result}",
                )
        finally:
            admin.close()
        return []

    def group_exists(self, admin: Any) -> bool:
        names = {g.get("group_id") for g in admin.list_groups()}
        return self.ns.group_id in names

    def traces(self) -> list[str]:
        """What the suite left anywhere, this run or an earlier one that crashed: rows of any
        prism_verify_* tenant, Redis keys under prism_verify:, consumer groups prism_verify_*."""
        found: list[str] = []
        with self.pg().cursor() as cur:
            for table in ORCH_TABLES:
                cur.execute(
                    f"SELECT tenant_id, count(*) FROM public.{table} WHERE tenant_id LIKE %s GROUP BY 1",
                    (NAMESPACE_PREFIX + r"\_%",),
                )
                found.extend(f"{table}: {n} rows of tenant {tenant}" for tenant, n in cur.fetchall())
        if self.services.redis is not None:
            keys = list(self.redis().scan_iter(match=NAMESPACE_PREFIX + ":*", count=1000))
            if keys:
                found.append(f"{len(keys)} Redis keys under {NAMESPACE_PREFIX}: (e.g. {keys[0]})")
        if self.services.kafka is not None:
            admin = self.admin()
            try:
                groups = sorted(
                    g.get("group_id", "")
                    for g in admin.list_groups()
                    if str(g.get("group_id", "")).startswith(NAMESPACE_PREFIX + "_")
                )
            finally:
                admin.close()
            found.extend(f"Kafka consumer group {g}" for g in groups)
        return found

    def close(self) -> None:
        for client in (self._producer, self._weaviate, self._redis, self._redis_stats, self._pg):
            if client is not None:
                with suppress(Exception):  # closing is best effort; the results are already taken
                    client.close()


# ---------------------------------------------------------------------------------------------------------
# PostgreSQL


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


# ---------------------------------------------------------------------------------------------------------
# Redis


def check_redis_operations(stack: Stack) -> str:
    app = stack.redis()  # NOT RUN HERE when Redis is not deployed
    conf = stack.services.redis or {}
    prefix = stack.ns.key_prefix
    key, hkey = prefix + "string", prefix + "hash"
    expect(app.set(key, "value-1", ex=120) is True, "SET did not answer OK")
    expect(app.get(key) == "value-1", f"GET {key} answered {app.get(key)!r}")
    ttl = app.ttl(key)
    expect(0 < ttl <= 120, f"TTL {key} is {ttl}, expected 1..120")
    expect(app.expire(key, 30) is True and 0 < app.ttl(key) <= 30, "EXPIRE did not shorten the TTL")
    app.hset(hkey, mapping={"task": "t-1", "status": "running", "retries": "0"})
    app.expire(hkey, 120)
    expect(app.hincrby(hkey, "retries", 2) == 2, "HINCRBY did not count")
    got = app.hgetall(hkey)
    expect(got == {"task": "t-1", "status": "running", "retries": "2"}, f"HGETALL answered {got}")
    expect(app.delete(key, hkey) == 2 and app.exists(key, hkey) == 0, "DEL did not remove both keys")

    stats = stack.redis_stats()
    policy = stats.config_get("maxmemory-policy").get("maxmemory-policy")
    maxmemory = int(stats.config_get("maxmemory").get("maxmemory", 0))
    expect(
        policy == conf["maxmemory_policy"],
        f"maxmemory-policy is {policy}, expected {conf['maxmemory_policy']}",
    )
    expect(maxmemory > 0, "maxmemory is 0 (unlimited): the eviction policy never acts")
    persistence = stats.info("persistence")
    parts = [f"eviction {policy} at maxmemory {maxmemory}"]
    if conf["appendonly"]:
        expect(
            persistence.get("aof_enabled") == 1, f"AOF is off (aof_enabled={persistence.get('aof_enabled')})"
        )
        expect(
            persistence.get("aof_last_write_status") == "ok",
            f"aof_last_write_status {persistence.get('aof_last_write_status')}",
        )
        parts.append("AOF on, last write ok")
    if conf["rdb_save"]:
        save = stats.config_get("save").get("save", "")
        expect(save.strip() != "", "RDB save points are empty")
        expect(
            persistence.get("rdb_last_bgsave_status") == "ok",
            f"rdb_last_bgsave_status {persistence.get('rdb_last_bgsave_status')}",
        )
        parts.append(f"RDB save '{save}', last bgsave ok")
    return "SET/GET/TTL/EXPIRE/HSET/HINCRBY/HGETALL/DEL as " + conf["user"] + "; " + ", ".join(parts)


# ---------------------------------------------------------------------------------------------------------
# Kafka


def agent_topics(declared: list[str]) -> list[str]:
    """The declared orch.<agent>.<stream> topics other than the dead-letter ones."""
    found = []
    for topic in declared:
        try:
            dlq_topic_for(topic)
        except ValueError:
            continue
        found.append(topic)
    return found


def check_kafka_operations(stack: Stack) -> str:
    stack.kafka_conf()  # NOT RUN HERE when Kafka is not deployed
    ns = stack.ns
    topics = agent_topics(stack.services.kafka_topics)
    expect(len(topics) >= len(AGENT_TYPES), f"declared agent topics: {topics}")
    wanted: dict[tuple[str, int, int], bytes] = {}
    for topic in topics:
        key = f"{ns.key_prefix}{topic}"
        partition, offset = stack.produce(topic, key, {"check": "kafka_operations", "topic": topic})
        wanted[(topic, partition, offset)] = key.encode()
    stack.consume_exact(wanted)

    # Dead letters, through the reference routing (prism_kafka_dlq.DlqWorker): one rejected message per
    # agent's tasks topic must arrive in that agent's DLQ with the dlq.* headers.
    tasks_topics = [f"orch.{agent}.tasks" for agent in AGENT_TYPES if f"orch.{agent}.tasks" in topics]
    dlqs = [dlq_topic_for(t) for t in tasks_topics]
    dlq_start = stack.end_offsets(dlqs)
    rejected: dict[tuple[str, int, int], bytes] = {}
    for topic in tasks_topics:
        reject_key = f"{ns.key_prefix}reject:{topic}"
        partition, offset = stack.produce(topic, reject_key, {"check": "dlq"}, reject=True)
        rejected[(topic, partition, offset)] = reject_key.encode()
    dead = route_rejected(stack, rejected)
    for (topic, partition, offset), letter_key in rejected.items():
        dlq = dlq_topic_for(topic)
        stack.produced[dlq] = stack.produced.get(dlq, 0) + 1
        match = [
            r
            for r in dead.get(dlq, [])
            if r.key == letter_key
            and dict(r.headers).get("dlq.original.topic") == topic.encode()
            and dict(r.headers).get("dlq.original.offset") == str(offset).encode()
            and dict(r.headers).get("dlq.original.partition") == str(partition).encode()
            and dict(r.headers).get("dlq.error", b"").startswith(b"Rejected")
        ]
        expect(
            len(match) == 1,
            f"the rejected message {topic}[{partition}]@{offset} is not in {dlq} ({len(match)})",
        )
    grown = stack.end_offsets(dlqs)
    expect(
        all(grown[d] > dlq_start[d] for d in dlqs),
        f"DLQ end offsets did not grow: {dlq_start} -> {grown}",
    )
    return (
        f"{len(wanted)} messages produced (acks=all) and consumed on {', '.join(topics)} by group {ns.group_id}; "
        f"{len(rejected)} rejected messages reached {', '.join(dlqs)} with dlq.* headers"
    )


def route_rejected(stack: Stack, rejected: dict[tuple[str, int, int], bytes]) -> dict[str, list[Any]]:
    """Run DlqWorker over the tasks partitions from the rejected offsets on; the handler rejects this run's
    marked messages and accepts (ignores) everything else. Returns the DLQ records seen since."""
    from kafka import TopicPartition

    run = stack.ns.run_id.encode()

    def handler(message: Any) -> None:
        headers = dict(message.headers)
        if headers.get(HEADER_RUN) == run and HEADER_REJECT in headers:
            raise Rejected("rejected on purpose by the PRISM acceptance suite")

    dlqs = sorted({dlq_topic_for(t) for t, _, _ in rejected})
    dlq_start = stack.end_offsets(dlqs)
    consumer = stack.consumer_at(list(rejected))
    try:
        worker = DlqWorker(consumer, stack.producer(), handler, send_timeout=KAFKA_WAIT_S)
        deadline = time.monotonic() + KAFKA_WAIT_S
        done = 0
        while time.monotonic() < deadline:
            worker.run_once(timeout_ms=1000)
            done = sum(1 for (t, p, o) in rejected if consumer.position(TopicPartition(t, p)) > o)
            if done == len(rejected):
                break
        expect(done == len(rejected), f"DlqWorker processed {done} of {len(rejected)} rejected messages")
    finally:
        consumer.close()
    # Read the dead letters back (their own reader, no group).
    return read_since(stack, dlq_start)


def read_since(stack: Stack, starts: dict[str, int]) -> dict[str, list[Any]]:
    """The last records (up to 50 per partition) of the topics in ``starts``, up to their current end:
    enough to find this run's dead letters, which were written moments ago."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(enable_auto_commit=False, **stack.kafka_conf())
    seen: dict[str, list[Any]] = {t: [] for t in starts}
    try:
        parts = [TopicPartition(t, p) for t in starts for p in sorted(consumer.partitions_for_topic(t) or [])]
        ends = consumer.end_offsets(parts)
        consumer.assign(parts)
        wanted_total = 0
        for tp in parts:
            back = max(0, ends[tp] - 50)
            consumer.seek(tp, back)
            wanted_total += ends[tp] - back
        deadline = time.monotonic() + KAFKA_WAIT_S
        count = 0
        while count < wanted_total and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                for record in records:
                    if record.offset < ends[tp]:
                        seen[tp.topic].append(record)
                        count += 1
    finally:
        consumer.close()
    return seen


# ---------------------------------------------------------------------------------------------------------
# Weaviate


def knowledge_rows(stack: Stack) -> list[tuple[str, str, str, str]]:
    """The mirror rows of the knowledge collection (tenant and collection of the weaviate role's seed)."""
    conf = stack.services.weaviate or {}
    with stack.pg().cursor() as cur:
        cur.execute(
            "SELECT knowledge_id::text, title, domain, checksum FROM public.orch_knowledge_metadata "
            "WHERE tenant_id = %s AND metadata->>'collection' = %s ORDER BY title",
            (conf.get("tenant", "default"), conf["collection"]),
        )
        return list(cur.fetchall())


def bm25_top(stack: Stack, query: str, properties: list[str] | None = None) -> Any:
    conf = stack.services.weaviate or {}
    collection = stack.weaviate().collections.use(conf["collection"])
    result = collection.query.bm25(query=query, query_properties=properties, limit=3)
    return result.objects[0] if result.objects else None


def check_weaviate_operations(stack: Stack) -> str:
    client = stack.weaviate()  # NOT RUN HERE when Weaviate is not deployed
    conf = stack.services.weaviate or {}
    name = conf["collection"]
    expect(client.collections.exists(name), f"collection {name} does not exist")
    count = stack.weaviate_count()
    expected = conf["expected_objects"]
    expect(count == expected, f"{name} holds {count} objects, the knowledge files are {expected}")
    rows = knowledge_rows(stack)
    expect(len(rows) == count, f"orch_knowledge_metadata mirrors {len(rows)} objects, Weaviate holds {count}")
    content_prop, title_prop = conf["content_property"], conf["title_property"]
    misses = []
    for knowledge_id, title, _domain, checksum in rows:
        top = bm25_top(stack, title, [title_prop])
        if top is None or str(top.uuid) != knowledge_id:
            misses.append(f"'{title}' -> {getattr(top, 'uuid', None)}, expected {knowledge_id}")
            continue
        content = str(top.properties.get(content_prop) or "")
        digest = hashlib.sha256(content.encode()).hexdigest()
        if digest != checksum:
            misses.append(
                f"{knowledge_id}: sha256 of {content_prop} {digest[:12]}, mirror says {checksum[:12]}"
            )
        if top.properties.get(title_prop) != title:
            misses.append(
                f"{knowledge_id}: {title_prop} {top.properties.get(title_prop)!r}, mirror says {title!r}"
            )
    expect(not misses, "BM25 by title: " + "; ".join(misses))
    return f"{name}: {count} objects = {expected} knowledge files = mirror rows; BM25 top hit and checksum right for all {len(rows)}"


# ---------------------------------------------------------------------------------------------------------
# The whole path of one user query


def check_integration_workflow(stack: Stack) -> str:
    from psycopg2.extras import Json

    ns = stack.ns
    steps: list[str] = []
    with stack.pg().cursor() as cur:
        query_text = "Why did the pressure on line 3 rise, and what should we do?"
        intent = {"intent": "diagnose_and_act", "entities": {"line": 3, "metric": "pressure"}}
        query_id = one(
            cur,
            "INSERT INTO public.orch_user_query (tenant_id, user_id, session_id, query_text, parsed_intent, status) "
            "VALUES (%s, %s, %s, %s, %s, 'planned') RETURNING query_id",
            (ns.tenant, ns.user_id, ns.run_id, query_text, Json(intent)),
        )
        found = one(
            cur,
            "SELECT query_id FROM public.orch_user_query WHERE tenant_id = %s AND parsed_intent @> %s",
            (ns.tenant, Json({"intent": "diagnose_and_act"})),
        )
        expect(found == query_id, "the query is not found by its parsed_intent (@>)")
        task_id = one(
            cur,
            "INSERT INTO public.orch_task_manage (tenant_id, query_id, user_id, title, status, started_at) "
            "VALUES (%s, %s, %s, %s, 'running', now()) RETURNING task_id",
            (ns.tenant, query_id, ns.user_id, "Diagnose line 3 pressure"),
        )
        graph = {
            "nodes": [{"id": a, "agent": a} for a in AGENT_TYPES],
            "edges": [[AGENT_TYPES[i], AGENT_TYPES[i + 1]] for i in range(len(AGENT_TYPES) - 1)],
        }
        plan_id = one(
            cur,
            "INSERT INTO public.orch_execution_plan (tenant_id, task_id, task_graph, status) "
            "VALUES (%s, %s, %s, 'running') RETURNING plan_id",
            (ns.tenant, task_id, Json(graph)),
        )
        subtasks = {}
        for seq, agent in enumerate(AGENT_TYPES):
            subtasks[agent] = one(
                cur,
                "INSERT INTO public.orch_agent_subtask (tenant_id, plan_id, agent_type, sequence_no, status, input_data) "
                "VALUES (%s, %s, %s, %s, 'queued', %s) RETURNING subtask_id",
                (ns.tenant, plan_id, agent, seq, Json({"query_id": str(query_id)})),
            )
        steps.append("query (parsed_intent) -> task -> plan (task_graph) -> 4 subtasks")

        # Events: each subtask to its agent's tasks topic, consumed by the run's group, then its result.
        if stack.services.kafka is not None:
            wanted: dict[tuple[str, int, int], bytes] = {}
            for agent, subtask_id in subtasks.items():
                for stream in ("tasks", "results"):
                    topic = f"orch.{agent}.{stream}"
                    event = {"task_id": str(task_id), "subtask_id": str(subtask_id), "agent": agent}
                    key = f"{ns.key_prefix}{task_id}"
                    partition, offset = stack.produce(topic, key, event)
                    wanted[(topic, partition, offset)] = key.encode()
            records = stack.consume_exact(wanted)
            for record in records.values():
                event = json.loads(record.value)
                cur.execute(
                    "UPDATE public.orch_agent_subtask SET status = 'completed', started_at = now(), "
                    "completed_at = now(), output_data = %s WHERE subtask_id = %s AND tenant_id = %s",
                    (Json({"event_offset": record.offset}), event["subtask_id"], ns.tenant),
                )
            done = one(
                cur,
                "SELECT count(*) FROM public.orch_agent_subtask WHERE plan_id = %s AND status = 'completed'",
                (plan_id,),
            )
            expect(
                done == len(AGENT_TYPES), f"{done} of {len(AGENT_TYPES)} subtasks completed from their events"
            )
            steps.append(
                f"{len(wanted)} events on the agent tasks/results topics consumed, subtasks completed"
            )
        else:
            stack.extra_rows.append(
                ("integration_workflow: events", "NOT RUN HERE", stack.services.kafka_absent)
            )

        result = {"task_id": str(task_id), "answer": "valve V-3 sticking", "confidence": 0.9}
        cur.execute(
            "UPDATE public.orch_task_manage SET status = 'completed', completed_at = now(), result = %s "
            "WHERE task_id = %s",
            (Json(result), task_id),
        )
        if stack.services.redis is not None:
            app = stack.redis()
            cache_key = f"{ns.key_prefix}result:{task_id}"
            app.set(cache_key, json.dumps(result), ex=300)
            cached = json.loads(app.get(cache_key) or "null")
            ttl = app.ttl(cache_key)
            expect(cached == result and 0 < ttl <= 300, f"cached result {cached}, TTL {ttl}")
            app.delete(cache_key)
            steps.append(f"result cached in Redis (TTL {ttl}s)")
        else:
            stack.extra_rows.append(
                ("integration_workflow: cache", "NOT RUN HERE", stack.services.redis_absent)
            )

        if stack.services.weaviate is not None:
            rows = knowledge_rows(stack)
            expect(rows, "no knowledge metadata (tenant default) to look up")
            top = bm25_top(stack, rows[0][1])
            expect(top is not None, f"BM25 for '{rows[0][1]}' found nothing")
            joined = one(
                cur,
                "SELECT title FROM public.orch_knowledge_metadata WHERE knowledge_id = %s",
                (str(top.uuid),),
            )
            expect(
                joined is not None, f"BM25 top hit {top.uuid} has no metadata row in orch_knowledge_metadata"
            )
            steps.append(f"knowledge via BM25 -> '{joined}' joined from orch_knowledge_metadata")
        else:
            stack.extra_rows.append(
                ("integration_workflow: knowledge", "NOT RUN HERE", stack.services.weaviate_absent)
            )

        one(
            cur,
            "INSERT INTO public.orch_user_feedback (tenant_id, query_id, task_id, user_id, rating, comment) "
            "VALUES (%s, %s, %s, %s, 5, 'solved') RETURNING feedback_id",
            (ns.tenant, query_id, task_id, ns.user_id),
        )
        chain = one(
            cur,
            "SELECT count(*) FROM public.orch_user_query q JOIN public.orch_task_manage t USING (query_id) "
            "JOIN public.orch_execution_plan p ON p.task_id = t.task_id "
            "JOIN public.orch_agent_subtask s ON s.plan_id = p.plan_id "
            "JOIN public.orch_user_feedback f ON f.task_id = t.task_id "
            "WHERE q.query_id = %s AND t.status = 'completed'",
            (query_id,),
        )
        expect(chain == len(AGENT_TYPES), f"the joined path query->feedback has {chain} rows, expected 4")
        steps.append("feedback recorded; the whole path joins")
        removed = stack.delete_tenant_rows(cur)
        steps.append(f"{removed} rows removed")
    return "; ".join(steps)


# ---------------------------------------------------------------------------------------------------------
# Monitoring


def http_json(url: str) -> Any:
    import requests

    response = requests.get(url, timeout=HTTP_TIMEOUT_S)
    response.raise_for_status()
    return response.json()


def check_monitoring(stack: Stack) -> str:
    import requests

    conf = stack.services.monitoring
    if conf is None:
        raise NotRunHere(stack.services.monitoring_absent)
    prom = conf["prometheus_url"].rstrip("/")
    targets = http_json(f"{prom}/api/v1/targets?state=active")["data"]["activeTargets"]
    expect(targets, "Prometheus has no active targets")
    down = [
        f"{t['labels'].get('job')}/{t['labels'].get('instance')}: {t.get('lastError') or t['health']}"
        for t in targets
        if t.get("health") != "up"
    ]
    expect(not down, f"{len(down)} of {len(targets)} targets not up: {'; '.join(down)}")
    groups = http_json(f"{prom}/api/v1/rules")["data"]["groups"]
    rules = [r for g in groups for r in g.get("rules", [])]
    expect(rules, "no rules loaded")
    broken = [
        f"{r.get('name')}: {r.get('lastError')}" for r in rules if r.get("health") not in ("ok", "unknown")
    ]
    expect(not broken, f"rules with errors: {'; '.join(broken)}")
    am = conf["alertmanager_url"].rstrip("/")
    ready = requests.get(f"{am}/-/ready", timeout=HTTP_TIMEOUT_S)
    expect(ready.status_code == 200, f"Alertmanager /-/ready answered {ready.status_code}")
    with open(conf["dashboard_file"], encoding="utf-8") as handle:
        dashboard = json.load(handle)
    queries = dashboard_queries(dashboard)
    expect(queries, f"{conf['dashboard_file']} has no panel queries")
    empty = []
    for title, expr in queries:
        answer = requests.get(
            f"{prom}/api/v1/query", params={"query": concrete_expr(expr)}, timeout=HTTP_TIMEOUT_S
        ).json()
        if answer.get("status") != "success":
            empty.append(f"'{title}': {answer.get('error')}")
        elif not answer["data"]["result"]:
            empty.append(f"'{title}': no data for {expr}")
    expect(not empty, f"{len(empty)} of {len(queries)} dashboard queries without data: {'; '.join(empty)}")
    if conf.get("grafana_url"):
        health = http_json(conf["grafana_url"].rstrip("/") + "/api/health")
        expect(health.get("database") == "ok", f"Grafana /api/health: {health}")
    else:
        stack.extra_rows.append(("monitoring: grafana", "NOT RUN HERE", stack.services.grafana_absent))
    return (
        f"{len(targets)} targets up; {len(rules)} rules in {len(groups)} groups loaded; Alertmanager ready; "
        f"{len(queries)} dashboard queries return data"
        + ("; Grafana healthy" if conf.get("grafana_url") else "")
    )


CHECK_FUNCTIONS: dict[str, Callable[[Stack], str]] = {
    "postgresql_basic": check_postgresql_basic,
    "postgresql_relationships": check_postgresql_relationships,
    "redis_operations": check_redis_operations,
    "weaviate_operations": check_weaviate_operations,
    "kafka_operations": check_kafka_operations,
    "integration_workflow": check_integration_workflow,
    "monitoring": check_monitoring,
}


@contextmanager
def opened(services: Services, ns: Namespace) -> Iterator[Stack]:
    stack = Stack(services, ns)
    try:
        yield stack
    finally:
        stack.close()


__all__ = ["CHECK_FUNCTIONS", "CheckFailed", "Services", "Stack", "opened"]
