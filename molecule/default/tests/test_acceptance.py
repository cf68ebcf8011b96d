"""The acceptance suite (playbooks/verify.yml, role verify) against the Molecule stack, the way an operator
runs it after a deploy: twice in a row, each run must pass and leave the counts as they were; and a run with
a wrong expectation must fail, so the suite can fail."""

from __future__ import annotations

import json
import uuid

import pytest
import redis
import yaml
from conftest import ROOT, pg_connect, run_playbook, secret

REDIS_PORT = 16379

CORE = [
    "postgresql_basic",
    "postgresql_relationships",
    "redis_operations",
    "kafka_operations",
    "integration_workflow",
    "no_trace",
]
OPTIONAL = {"weaviate_operations": "weaviate", "monitoring": "prometheus"}


def verify(tmp_path, name: str, *extra: str) -> tuple[int, str, dict]:
    report = tmp_path / f"{name}.json"
    result = run_playbook("-e", f"verify_report_file={report}", *extra, playbook="playbooks/verify.yml")
    assert report.exists(), f"no report written:\n{result.output[-3000:]}"
    return result.rc, result.output, json.loads(report.read_text())


@pytest.fixture(scope="module")
def app_data():
    """Data of the application (tenant 'default', a key outside the suite's prefix) that the runs must leave
    exactly as it was, so that "counts unchanged" is measured on a stack that is not empty."""
    marker = f"acceptance-test-{uuid.uuid4().hex[:8]}"
    conn = pg_connect("prism_app", "postgres_app_password")
    cache = redis.Redis(port=REDIS_PORT, username="prism_app", password=secret("redis_app_password"))
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO public.orch_user_query (user_id, query_text, parsed_intent) VALUES (%s, %s, %s) "
            "RETURNING query_id",
            ("operator", marker, json.dumps({"intent": "keep"})),
        )
        query_id = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO public.orch_task_manage (query_id, user_id, title) VALUES (%s, 'operator', %s)",
            (query_id, marker),
        )
    cache.set(f"app:{marker}", "keep")
    yield marker
    with conn.cursor() as cur:
        cur.execute("DELETE FROM public.orch_task_manage WHERE title = %s", (marker,))
        cur.execute("DELETE FROM public.orch_user_query WHERE query_text = %s", (marker,))
    cache.delete(f"app:{marker}")
    cache.close()
    conn.close()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, app_data):
    tmp = tmp_path_factory.mktemp("verify")
    return [verify(tmp, "first"), verify(tmp, "second")]


def test_application_data_is_untouched(two_runs, app_data):
    conn = pg_connect("prism_app", "postgres_app_password")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM public.orch_task_manage WHERE title = %s", (app_data,))
        assert cur.fetchone()[0] == 1
    conn.close()
    cache = redis.Redis(port=REDIS_PORT, username="prism_app", password=secret("redis_app_password"))
    assert cache.get(f"app:{app_data}") == b"keep"
    cache.close()
    before = two_runs[0][2]["before"]
    assert before["pg_rows"]["orch_task_manage"] >= 1 and before["redis_keys"] >= 1


@pytest.mark.parametrize("run", [0, 1], ids=["first", "second"])
def test_every_check_passes_or_says_why_not(two_runs, run):
    rc, output, report = two_runs[run]
    rows = {r["name"]: r for r in report["rows"]}
    assert rc == 0, output[-4000:]
    assert report["failed_checks"] == []
    for name in CORE:
        assert rows[name]["status"] == "PASS", rows[name]
    for name, container in OPTIONAL.items():
        row = rows[name]
        if row["status"] != "PASS":
            # Never a silent skip: the row names the missing service and why.
            assert row["status"] == "NOT RUN HERE" and f"{container} is not deployed" in row["detail"], row
    for row in report["rows"]:
        assert row["status"] in {"PASS", "NOT RUN HERE"}, row
        assert row["detail"], row
    # The table is printed for the operator, with its closing count line.
    assert "postgresql_basic" in output and " passed, 0 failed, " in output


@pytest.mark.parametrize("run", [0, 1], ids=["first", "second"])
def test_counts_are_unchanged_by_a_run(two_runs, run):
    _, _, report = two_runs[run]
    before, after, produced = report["before"], report["after"], report["produced"]
    assert before["pg_rows"] == after["pg_rows"]
    assert before["redis_keys"] == after["redis_keys"]
    assert before["weaviate_objects"] == after["weaviate_objects"]
    # Kafka keeps messages until retention: the topics grew by exactly what the run produced (nobody else
    # produces on the Molecule stack), every agent topic and every DLQ among them.
    grown = {
        t: after["kafka_end_offsets"][t] - before["kafka_end_offsets"][t] for t in before["kafka_end_offsets"]
    }
    assert {t: n for t, n in grown.items() if n} == produced
    assert {t for t in produced if t.endswith(".dlq")} == {
        f"orch.{a}.dlq" for a in ("monitoring", "prediction", "control", "analysis")
    }


def test_second_run_starts_where_the_first_left(two_runs):
    first, second = two_runs[0][2], two_runs[1][2]
    assert first["run_id"] != second["run_id"]
    assert second["before"]["pg_rows"] == first["after"]["pg_rows"]
    assert second["before"]["redis_keys"] == first["after"]["redis_keys"]


def test_a_wrong_expectation_fails_the_run(tmp_path, two_runs):
    """The suite can fail: expecting another eviction policy than the deployed one is a FAIL and rc != 0."""
    # redis_settings replaces the role's whole dict (its preflight wants maxmemory): the defaults, one changed.
    defaults = yaml.safe_load((ROOT / "roles" / "prism" / "defaults" / "main" / "services.yml").read_text())
    wrong = {**defaults["redis_settings"], "maxmemory-policy": "volatile-ttl"}
    settings = json.dumps({"redis_settings": wrong})
    rc, output, report = verify(
        tmp_path, "wrong", "-e", settings, "-e", '{"verify_checks": ["redis_operations"]}'
    )
    rows = {r["name"]: r for r in report["rows"]}
    assert rc != 0
    assert report["failed_checks"] == ["redis_operations"]
    assert "maxmemory-policy is allkeys-lru, expected volatile-ttl" in rows["redis_operations"]["detail"]
    assert rows["no_trace"]["status"] == "PASS"
    assert "acceptance check(s) failed: redis_operations" in output
