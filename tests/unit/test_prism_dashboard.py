"""The Grafana dashboard as code (roles/grafana/files/prism_dashboard.py): its JSON round-trips through the
grafana-foundation-sdk types unchanged, and it has rows only for the jobs that are scraped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "roles" / "grafana" / "files"))
import prism_dashboard  # noqa: E402

ALL_JOBS = [
    "prometheus",
    "alertmanager",
    "postgres",
    "redis",
    "node",
    "kafka_jmx",
    "kafka",
    "cadvisor",
    "weaviate",
]


def _exprs(board: dict) -> list[str]:
    return [t["expr"] for p in board["panels"] if p["type"] != "row" for t in p["targets"]]


@pytest.mark.parametrize("jobs", [ALL_JOBS, ["prometheus", "alertmanager", "postgres", "redis", "node"]])
def test_json_round_trips_through_the_sdk_types(jobs):
    text = prism_dashboard.to_json(prism_dashboard.build(jobs, "prism-prometheus"))
    parsed = Dashboard.from_json(json.loads(text))
    again = json.dumps(parsed, cls=JSONEncoder, sort_keys=True, indent=2) + "\n"
    assert json.loads(again) == json.loads(text)
    assert parsed.title == "PRISM Orchestration DB Monitoring"


def test_rows_follow_the_scraped_jobs():
    full = json.loads(prism_dashboard.to_json(prism_dashboard.build(ALL_JOBS, "ds")))
    small = json.loads(prism_dashboard.to_json(prism_dashboard.build(["prometheus", "postgres"], "ds")))
    rows = [p["title"] for p in full["panels"] if p["type"] == "row"]
    assert rows == [
        "Stack",
        "PostgreSQL",
        "Redis",
        "Kafka",
        "Kafka consumers",
        "Weaviate",
        "Host",
        "Containers",
    ]
    assert [p["title"] for p in small["panels"] if p["type"] == "row"] == ["Stack", "PostgreSQL"]
    assert not [e for e in _exprs(small) if e.startswith(("redis_", "kafka_", "node_", "container_"))]


def test_every_panel_has_a_query_on_the_given_datasource():
    board = json.loads(prism_dashboard.to_json(prism_dashboard.build(ALL_JOBS, "prism-prometheus")))
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert panels and all(p["targets"] and p["datasource"]["uid"] == "prism-prometheus" for p in panels)
    assert len(set(_exprs(board))) == len(_exprs(board))


def test_usage_error_without_arguments(capsys):
    assert prism_dashboard.main(["prism_dashboard.py"]) == 2
    assert "Usage" in capsys.readouterr().err
