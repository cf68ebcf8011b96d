#!/usr/bin/env python3
# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consumer-group lag and topic offsets of one Kafka cluster, under kafka_exporter's metric names.

The image's entrypoint (files/images/kafka_exporter/Dockerfile), implementing the part of the upstream
danielqsj/kafka-exporter contract the stack uses: ``--kafka.server=host:port`` (repeatable), port 9308,
``/metrics`` and ``/healthz``. Every scrape asks the cluster afresh (kafka-python's admin client), so a
deleted group or topic disappears at the next scrape, and a cluster that does not answer fails the scrape
(``up`` 0) instead of serving stale figures.

Exported, with kafka_exporter's labels:
  kafka_brokers                                                      brokers in the cluster metadata
  kafka_topic_partitions{topic}                                      partitions per topic
  kafka_topic_partition_current_offset{topic,partition}              newest offset (log end)
  kafka_topic_partition_oldest_offset{topic,partition}               oldest offset still in the log
  kafka_consumergroup_current_offset{consumergroup,topic,partition}  committed offset
  kafka_consumergroup_current_offset_sum{consumergroup,topic}
  kafka_consumergroup_lag{consumergroup,topic,partition}             newest - committed, never below 0
  kafka_consumergroup_lag_sum{consumergroup,topic}
Internal topics (``__*``) are left out, as the stack's other Kafka code does.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.registry import Collector

LOG = logging.getLogger("prism_kafka_exporter")

# (topic, partition)
Partition = tuple[str, int]


@dataclass(frozen=True)
class GroupLag:
    """One group's committed offset and lag on one partition."""

    group: str
    topic: str
    partition: int
    committed: int
    lag: int


def partition_lag(newest: int, committed: int) -> int:
    """Lag of a committed offset behind the log end. The log end is read after the commit, so a commit can
    look ahead of it only if the two reads race with a producer; that is no lag, not a negative one."""
    return max(newest - committed, 0)


def group_lags(
    committed: Mapping[str, Mapping[Partition, int]], newest: Mapping[Partition, int]
) -> list[GroupLag]:
    """Lag of every group on every partition it has committed on, in a stable order. A partition whose log
    end is unknown (a deleted topic the group still has offsets for) and a negative committed offset (no
    commit) have no lag to report: they are left out, not shown as 0."""
    out: list[GroupLag] = []
    for group in sorted(committed):
        for (topic, partition), offset in sorted(committed[group].items()):
            if offset < 0 or (topic, partition) not in newest:
                continue
            out.append(
                GroupLag(group, topic, partition, offset, partition_lag(newest[(topic, partition)], offset))
            )
    return out


def sums(lags: Iterable[GroupLag]) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (group, topic): the sum of committed offsets and the sum of lags."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for item in lags:
        offset, lag = out.get((item.group, item.topic), (0, 0))
        out[(item.group, item.topic)] = (offset + item.committed, lag + item.lag)
    return out


@dataclass
class Snapshot:
    """What one scrape read from the cluster."""

    brokers: int
    partitions: dict[str, int]
    newest: dict[Partition, int]
    oldest: dict[Partition, int]
    committed: dict[str, dict[Partition, int]]


def read_snapshot(admin: Any) -> Snapshot:
    """Read brokers, topics, offsets and committed group offsets with one admin client."""
    from kafka import TopicPartition
    from kafka.admin import OffsetSpec

    brokers = len(admin.describe_cluster().get("brokers", []))
    topics = [
        t for t in admin.describe_topics() if not t["name"].startswith("__") and not t.get("error_code")
    ]
    partitions = {t["name"]: len(t["partitions"]) for t in topics}
    tps = [TopicPartition(t["name"], p["partition_index"]) for t in topics for p in t["partitions"]]
    newest: dict[Partition, int] = {}
    oldest: dict[Partition, int] = {}
    if tps:
        for spec, into in ((OffsetSpec.LATEST, newest), (OffsetSpec.EARLIEST, oldest)):
            for tp, found in admin.list_partition_offsets(dict.fromkeys(tps, spec)).items():
                into[(tp.topic, tp.partition)] = int(found.offset)
    groups = sorted({g["group_id"] for g in admin.list_groups()})
    committed: dict[str, dict[Partition, int]] = {}
    if groups:
        for group, offsets in admin.list_group_offsets(groups).items():
            committed[group] = {
                (tp.topic, tp.partition): int(meta.offset)
                for tp, meta in offsets.items()
                if not tp.topic.startswith("__")
            }
    return Snapshot(brokers, partitions, newest, oldest, committed)


# kafka_exporter's families: name -> (help, labels).
FAMILIES: dict[str, tuple[str, list[str]]] = {
    "kafka_brokers": ("Number of Brokers in the Kafka Cluster.", []),
    "kafka_topic_partitions": ("Number of partitions for this Topic", ["topic"]),
    "kafka_topic_partition_current_offset": (
        "Current Offset of a Broker at Topic/Partition",
        ["topic", "partition"],
    ),
    "kafka_topic_partition_oldest_offset": (
        "Oldest Offset of a Broker at Topic/Partition",
        ["topic", "partition"],
    ),
    "kafka_consumergroup_current_offset": (
        "Current Offset of a ConsumerGroup at Topic/Partition",
        ["consumergroup", "topic", "partition"],
    ),
    "kafka_consumergroup_lag": (
        "Current Approximate Lag of a ConsumerGroup at Topic/Partition",
        ["consumergroup", "topic", "partition"],
    ),
    "kafka_consumergroup_current_offset_sum": (
        "Current Offset of a ConsumerGroup at Topic for all partitions",
        ["consumergroup", "topic"],
    ),
    "kafka_consumergroup_lag_sum": (
        "Current Approximate Lag of a ConsumerGroup at Topic for all partitions",
        ["consumergroup", "topic"],
    ),
}


def samples(snapshot: Snapshot) -> dict[str, list[tuple[list[str], float]]]:
    """Every sample of the snapshot by family name: (label values, value)."""
    lags = group_lags(snapshot.committed, snapshot.newest)
    return {
        "kafka_brokers": [([], snapshot.brokers)],
        "kafka_topic_partitions": [([t], n) for t, n in sorted(snapshot.partitions.items())],
        "kafka_topic_partition_current_offset": [
            ([t, str(p)], o) for (t, p), o in sorted(snapshot.newest.items())
        ],
        "kafka_topic_partition_oldest_offset": [
            ([t, str(p)], o) for (t, p), o in sorted(snapshot.oldest.items())
        ],
        "kafka_consumergroup_current_offset": [
            ([x.group, x.topic, str(x.partition)], x.committed) for x in lags
        ],
        "kafka_consumergroup_lag": [([x.group, x.topic, str(x.partition)], x.lag) for x in lags],
        "kafka_consumergroup_current_offset_sum": [
            ([g, t], o) for (g, t), (o, _) in sorted(sums(lags).items())
        ],
        "kafka_consumergroup_lag_sum": [([g, t], lag) for (g, t), (_, lag) in sorted(sums(lags).items())],
    }


def render(snapshot: Snapshot) -> list[Any]:
    """The snapshot as Prometheus metric families."""
    from prometheus_client.core import GaugeMetricFamily

    out = []
    for name, values in samples(snapshot).items():
        help_text, labels = FAMILIES[name]
        family = GaugeMetricFamily(name, help_text, labels=labels)
        for label_values, value in values:
            family.add_metric(label_values, value)
        out.append(family)
    return out


class ClusterCollector(Collector):
    """A prometheus_client collector that reads the cluster at every scrape, with an admin client of its own
    that is closed when the scrape ends. Nothing outlives a scrape, so a broker that restarts, moves to
    another address or comes back on a new container is found by the next one. A scrape is bounded by
    ``timeout_ms`` (bootstrap, each request, and the wait for a scrape still running) so that it fails
    within Prometheus's scrape timeout instead of piling up behind a cluster that does not answer."""

    def __init__(self, servers: list[str], timeout_ms: int) -> None:
        self.servers = servers
        self.timeout_ms = timeout_ms
        self.lock = threading.Lock()

    def collect(self) -> list[Any]:
        from kafka import KafkaAdminClient

        if not self.lock.acquire(timeout=self.timeout_ms / 1000):
            raise TimeoutError(f"the previous scrape is still reading the cluster after {self.timeout_ms} ms")
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.servers,
                client_id="prism-kafka-exporter",
                request_timeout_ms=self.timeout_ms,
                bootstrap_timeout_ms=self.timeout_ms,
                # A client lives for one scrape: no back-off carried over from a broker that was down.
                reconnect_backoff_max_ms=1000,
            )
            try:
                return render(read_snapshot(admin))
            finally:
                admin.close()
        except Exception as exc:
            # One line per failed scrape (a broker down for an hour is 240 of them); the traceback at debug.
            reason = str(exc) if type(exc).__name__ in str(exc) else f"{type(exc).__name__}: {exc}"
            LOG.error("reading the cluster at %s failed: %s", ",".join(self.servers), reason)
            LOG.debug("the failed read", exc_info=True)
            raise
        finally:
            self.lock.release()


def make_handler(registry: Any) -> type[BaseHTTPRequestHandler]:
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b"OK", "text/plain")
            elif path == "/metrics":
                try:
                    body = generate_latest(registry)
                except Exception as exc:  # the cluster did not answer: fail the scrape, say why
                    self._send(503, f"Kafka cluster not readable: {exc}\n".encode(), "text/plain")
                    return
                self._send(200, body, CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"Not found: /metrics or /healthz\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
            LOG.debug(format, *args)

    return Handler


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kafka.server", dest="servers", action="append", default=[], help="host:port, repeatable"
    )
    parser.add_argument(
        "--web.listen-address", dest="listen", default=":9308", help="[host]:port (default :9308)"
    )
    parser.add_argument(
        "--kafka.timeout-ms",
        dest="timeout_ms",
        type=int,
        default=5000,
        help="bound of one scrape's reads, in ms; keep it below Prometheus's scrape timeout (10 s)",
    )
    parser.add_argument("--log.level", dest="level", default="info")
    args = parser.parse_args(argv)
    if not args.servers:
        parser.error("--kafka.server is required: the bootstrap address of the cluster, e.g. kafka:19092")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector(args.servers, args.timeout_ms))
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), make_handler(registry))
    LOG.info("serving /metrics of %s on %s", ",".join(args.servers), args.listen)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
