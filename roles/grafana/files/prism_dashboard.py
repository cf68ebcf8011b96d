#!/usr/bin/env python3
"""The "PRISM Orchestration DB Monitoring" dashboard, as code (grafana-foundation-sdk).

Usage: prism_dashboard.py JOBS_JSON DATASOURCE_UID  -> the dashboard JSON on stdout.
JOBS_JSON is the list of Prometheus scrape job names of this deployment: a row's panels are generated only
for jobs that are scraped, so every panel of the dashboard can answer (tests run every panel's query
against the live Prometheus and require at least one series each).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

TITLE = "PRISM Orchestration DB Monitoring"
UID = "prism-orchestration"


@dataclass(frozen=True)
class PanelSpec:
    title: str
    expr: str
    unit: str = "short"
    legend: str = ""
    kind: str = "timeseries"  # or "stat"


# Rows: (title, scrape job that must be present, panels). Job None: always present.
ROWS: list[tuple[str, str | None, list[PanelSpec]]] = [
    (
        "Stack",
        None,
        [
            PanelSpec("Targets up", "up", legend="{{job}}", kind="stat"),
            PanelSpec("Firing alerts", 'ALERTS{alertstate="firing"}', legend="{{alertname}}"),
        ],
    ),
    (
        "PostgreSQL",
        "postgres",
        [
            PanelSpec("PostgreSQL up", "pg_up", kind="stat"),
            PanelSpec("Connections by state", "sum by (state) (pg_stat_activity_count)", legend="{{state}}"),
            PanelSpec("max_connections", "pg_settings_max_connections", kind="stat"),
            PanelSpec(
                "Transactions per second",
                'sum by (datname) (rate(pg_stat_database_xact_commit{datname="prism"}[5m]))',
                unit="ops",
                legend="{{datname}}",
            ),
            PanelSpec(
                "Database size", 'pg_database_size_bytes{datname="prism"}', unit="bytes", legend="{{datname}}"
            ),
        ],
    ),
    (
        "Redis",
        "redis",
        [
            PanelSpec("Redis up", "redis_up", kind="stat"),
            PanelSpec(
                "Memory used / maxmemory",
                "redis_memory_used_bytes / redis_memory_max_bytes",
                unit="percentunit",
            ),
            PanelSpec("Connected clients", "redis_connected_clients"),
            PanelSpec("Commands per second", "rate(redis_commands_processed_total[5m])", unit="ops"),
            PanelSpec("Evicted keys", "redis_evicted_keys_total"),
        ],
    ),
    (
        "Kafka",
        "kafka_jmx",
        [
            PanelSpec("Brokers running", "count(kafka_server_kafkaserver_brokerstate == 3)", kind="stat"),
            # One replica per partition: on a cluster every replica reports its log end.
            PanelSpec(
                "Messages per topic",
                'sum by (topic) (max by (topic, partition) (kafka_log_log_logendoffset{topic=~"orch[.].+"}))',
                legend="{{topic}}",
            ),
            PanelSpec(
                "Under-replicated partitions",
                "sum(kafka_server_replicamanager_underreplicatedpartitions)",
                kind="stat",
            ),
        ],
    ),
    (
        "Kafka consumers",
        "kafka",
        [
            PanelSpec(
                "Dead letters per DLQ",
                'sum by (topic) (kafka_topic_partition_current_offset{topic=~".+[.]dlq"})',
                legend="{{topic}}",
            ),
            # What KafkaConsumerLagHigh compares with its threshold.
            PanelSpec(
                "Lag per group",
                "max by (consumergroup, topic) (kafka_consumergroup_lag_sum)",
                legend="{{consumergroup}} {{topic}}",
            ),
        ],
    ),
    (
        "Weaviate",
        "weaviate",
        [PanelSpec("Weaviate up", 'up{job="weaviate"}', kind="stat")],
    ),
    (
        "Host",
        "node",
        [
            PanelSpec(
                "CPU busy",
                'sum(rate(node_cpu_seconds_total{mode!="idle"}[5m])) / count(node_cpu_seconds_total{mode="idle"})',
                unit="percentunit",
            ),
            PanelSpec(
                "Memory available",
                "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
                unit="percentunit",
            ),
            # By device: node_exporter leaves out the container's overlay root; the host's disks show
            # under the bind mounts (the textfile directory is on the PRISM data disk).
            PanelSpec(
                "Disk free by device",
                'min by (device) (node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs|squashfs|nsfs"}'
                ' / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs|squashfs|nsfs"})',
                unit="percentunit",
                legend="{{device}}",
            ),
            PanelSpec("Load (1 min)", "node_load1"),
        ],
    ),
    (
        "Containers",
        "cadvisor",
        [
            PanelSpec(
                "Container CPU",
                'sum by (name) (rate(container_cpu_usage_seconds_total{job="cadvisor", name=~".+"}[5m]))',
                legend="{{name}}",
            ),
            # Containers without a limit (spec limit 0) are left out rather than shown as 0 %.
            PanelSpec(
                "Container memory / limit",
                'max by (name) (container_memory_working_set_bytes{job="cadvisor", name=~".+"}'
                ' / (container_spec_memory_limit_bytes{job="cadvisor", name=~".+"} > 0))',
                unit="percentunit",
                legend="{{name}}",
            ),
            # From the Docker engine's RestartCount (files/images/cadvisor/main.go).
            PanelSpec(
                "Container restarts (15 min)",
                'max by (name) (increase(prism_container_restarts_total{job="cadvisor"}[15m]))',
                legend="{{name}}",
            ),
        ],
    ),
]


def _panel(spec: PanelSpec, datasource: model.DataSourceRef):
    query = prometheus.Dataquery().expr(spec.expr).ref_id("A")
    if spec.legend:
        query = query.legend_format(spec.legend)
    builder = stat.Panel() if spec.kind == "stat" else timeseries.Panel()
    return (
        builder.title(spec.title).datasource(datasource).with_target(query).unit(spec.unit).height(6).span(6)
    )


def build(jobs: list[str], datasource_uid: str) -> model.Dashboard:
    """The dashboard for a deployment that scrapes `jobs`."""
    datasource = model.DataSourceRef(type_val="prometheus", uid=datasource_uid)
    board = (
        dash.Dashboard(TITLE)
        .uid(UID)
        .tags(["prism", "orchestration"])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
    )
    for title, job, panels in ROWS:
        if job is not None and job not in jobs:
            continue
        board = board.with_row(dash.Row(title))
        for spec in panels:
            board = board.with_panel(_panel(spec, datasource))
    return board.build()


def to_json(board: model.Dashboard) -> str:
    return json.dumps(board, cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(to_json(build(json.loads(argv[1]), argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
