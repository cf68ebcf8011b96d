# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The open clients of one acceptance run (``Stack``) and the connection settings they come from
(``Services``): Kafka produce/consume helpers shared by the checks, the counts a run may touch
(``Stack.snapshot``) and the removal of everything in the run's namespace (``Stack.cleanup``, ``Stack.traces``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from ansible.module_utils.prism_acceptance import (
    NAMESPACE_PREFIX,
    ORCH_TABLES,
    TENANT_DELETE_ORDER,
    Namespace,
    NotRunHere,
    Snapshot,
    expect,
)

HEADER_RUN = "prism.verify.run"
HEADER_REJECT = "prism.verify.reject"
KAFKA_WAIT_S = 30


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


@contextmanager
def opened(services: Services, ns: Namespace) -> Iterator[Stack]:
    stack = Stack(services, ns)
    try:
        yield stack
    finally:
        stack.close()
