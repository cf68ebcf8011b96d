"""The acceptance suite's frame (pure parts): namespace, statuses, the no-trace comparison, the table and
the dashboard queries. The checks themselves run against the real stack (molecule/default/tests)."""

from __future__ import annotations

import pytest
from ansible.module_utils.prism_acceptance import (
    CHECKS,
    FAIL,
    NOT_RUN,
    PASS,
    CheckFailed,
    Namespace,
    NotRunHere,
    Row,
    Snapshot,
    check_run_id,
    compare_snapshots,
    concrete_expr,
    dashboard_queries,
    new_run_id,
    run_check,
    table,
)
from ansible.module_utils.prism_acceptance_checks import CHECK_FUNCTIONS
from ansible.module_utils.prism_acceptance_checks.kafka import agent_topics


def test_namespace_keeps_one_run_apart():
    ns = Namespace("abc123")
    assert ns.tenant == "prism_verify_abc123"
    assert ns.key_prefix == "prism_verify:abc123:"
    assert ns.group_id == "prism_verify_abc123"
    assert check_run_id(new_run_id()) != check_run_id(new_run_id())


@pytest.mark.parametrize("bad", ["", "ABC", "a-b", "a" * 33, "x'; drop"])
def test_bad_run_id_is_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match="run_id"):
        check_run_id(bad)


def test_run_check_statuses():
    def fails() -> str:
        raise CheckFailed("maxmemory-policy is noeviction")

    def not_here() -> str:
        raise NotRunHere("weaviate is not deployed (no weaviate role in this checkout)")

    def breaks() -> str:
        empty: dict[str, str] = {}
        return empty["missing"]

    row = run_check("a", lambda: "fine")
    assert (row.status, row.detail) == (PASS, "fine") and row.duration >= 0
    assert run_check("b", fails).status == FAIL and "noeviction" in run_check("b", fails).detail
    row = run_check("c", not_here)
    assert (row.status, row.detail) == (
        NOT_RUN,
        "weaviate is not deployed (no weaviate role in this checkout)",
    )
    row = run_check("d", breaks)
    assert row.status == FAIL and row.detail.startswith("KeyError: 'missing' (at breaks:")


def snap(rows: int = 3, keys: int = 10, offsets: int = 5) -> Snapshot:
    return Snapshot(
        pg_rows={"orch_user_query": rows, "orch_task_manage": 1},
        redis_keys=keys,
        weaviate_objects=None,
        kafka_end_offsets={"orch.control.tasks": offsets, "orch.control.dlq": 0},
        notes=["Weaviate not counted: not deployed"],
    )


def test_counts_equal_and_kafka_grown_by_the_run():
    equal, detail = compare_snapshots(snap(), snap(offsets=7), {"orch.control.tasks": 2})
    assert equal, detail
    assert "Kafka messages +2 (2 of this run" in detail and "Weaviate not counted" in detail


def test_a_leftover_row_or_key_is_a_trace():
    equal, detail = compare_snapshots(snap(), snap(rows=4, keys=11), {})
    assert not equal
    assert "orch_user_query 3 -> 4 rows" in detail and "Redis keys 10 -> 11" in detail


def test_kafka_that_grew_less_than_produced_is_reported():
    equal, detail = compare_snapshots(snap(), snap(offsets=5), {"orch.control.tasks": 1})
    assert not equal and "orch.control.tasks grew 0, this run produced 1" in detail


def test_other_producers_are_reported_not_failed():
    equal, detail = compare_snapshots(snap(), snap(offsets=9), {"orch.control.tasks": 1})
    assert equal and "+3 from other producers" in detail


def test_table_has_a_closing_count_line():
    lines = table([Row("postgresql_basic", PASS, "ok", 0.5), Row("monitoring", NOT_RUN, "not deployed")])
    assert lines[0].split()[:3] == ["CHECK", "STATUS", "TIME"]
    assert "postgresql_basic  PASS" in lines[1]
    assert lines[-1] == "1 passed, 0 failed, 1 not run here (of 2 checks)"


def test_dashboard_queries_include_nested_panels():
    dashboard = {
        "panels": [
            {"title": "Up", "targets": [{"expr": "up"}, {"refId": "B"}]},
            {"type": "row", "panels": [{"title": "Redis", "targets": [{"expr": "redis_up"}]}]},
            {"title": "Text"},
        ]
    }
    assert dashboard_queries(dashboard) == [("Up", "up"), ("Redis", "redis_up")]


def test_grafana_variables_become_runnable_promql():
    assert concrete_expr("rate(x[$__rate_interval])") == "rate(x[1m])"
    assert concrete_expr('up{instance="$instance"}') == 'up{instance=~".*"}'
    assert concrete_expr('up{job=~"$job"}') == 'up{job=~".*"}'
    assert concrete_expr('up{job="$job"}', {"job": "redis"}) == 'up{job="redis"}'


def test_every_check_has_its_function_in_the_module_order():
    assert list(CHECK_FUNCTIONS) == list(CHECKS)


def test_agent_topics_are_the_non_dlq_agent_topics():
    declared = ["orch.control.tasks", "orch.control.dlq", "orch.audit", "orch.system.events", "orch.x.tasks"]
    assert agent_topics(declared) == ["orch.control.tasks"]
