"""prism_acceptance against real PostgreSQL 17 (with the project's migrations), Kafka 4.1 (the declared
topics) and Redis 8.0 in throwaway containers: every check it can run here passes, twice; what is not deployed
says so; a wrong expectation, a leftover of an earlier run and bad input are reported as such."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import psycopg2
import pytest
import yaml

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
DECLARED = yaml.safe_load((REPO_ROOT / "files" / "kafka" / "topics.yml").read_text())
MIGRATIONS = REPO_ROOT / "files" / "migrations" / "postgres"
REDIS_IMAGE_LABEL = "org.prism.image.service=redis"
CORE = ["postgresql_basic", "postgresql_relationships", "redis_operations", "kafka_operations"]
CORE += ["integration_workflow", "no_trace"]


WEAVIATE_DEFAULTS = yaml.safe_load((REPO_ROOT / "roles" / "weaviate" / "defaults" / "main.yml").read_text())
# What more than one role needs (the collection's name among it) is a stack fact of the prism role.
STACK_FACTS = yaml.safe_load(
    (REPO_ROOT / "roles" / "prism" / "defaults" / "main" / "services.yml").read_text()
)
KNOWLEDGE = REPO_ROOT / "files" / "knowledge"


@pytest.fixture(scope="module")
def app_db(pg_server: Any, session_runner: Any) -> Iterator[dict[str, Any]]:
    """A database with the project's schema and a LOGIN member of orch_app, like the postgres role's seed."""
    name = f"t_{secrets.token_hex(6)}"
    user, password = f"app_{secrets.token_hex(4)}", secrets.token_hex(16)
    admin = pg_server.connect("postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    run = session_runner.run("prism_pg_schema", {**pg_server.login_args(name), "path": str(MIGRATIONS)})
    assert run.rc == 0, run.output
    with admin.cursor() as cur:
        cur.execute(f'CREATE ROLE "{user}" LOGIN PASSWORD %s IN ROLE orch_app', (password,))
    try:
        yield {
            "superuser": pg_server.login_args(name),
            "login_host": pg_server.host,
            "login_port": pg_server.port,
            "login_user": user,
            "login_password": password,
            "login_db": name,
        }
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{user}"')
        admin.close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[dict[str, Any]]:
    client = docker.from_env()
    images = [i for i in client.images.list(filters={"label": REDIS_IMAGE_LABEL}) if i.tags]
    if not images:
        pytest.fail(
            f"no Redis image labelled {REDIS_IMAGE_LABEL}: run the deploy (or the redis image step) first."
        )
    image = max(images, key=lambda i: i.attrs["Created"]).tags[0]
    password = secrets.token_hex(16)
    command = ["redis-server", "--requirepass", password, "--maxmemory", "64mb"]
    command += ["--maxmemory-policy", "allkeys-lru", "--appendonly", "yes", "--save", "60 100"]
    container = client.containers.run(
        image,
        command,
        detach=True,
        name=f"prism-test-redis-{secrets.token_hex(4)}",
        ports={"6379/tcp": ("127.0.0.1", None)},
        labels={"org.prism.test": "acceptance"},
    )
    try:
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["6379/tcp"][0]["HostPort"])
        import redis

        deadline = time.monotonic() + 60
        while True:
            try:
                redis.Redis(port=port, password=password, socket_timeout=2).ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail("Redis did not answer: " + container.logs(tail=20).decode(errors="replace"))
                time.sleep(0.5)
        yield {"port": port, "password": password, "image": image}
    finally:
        container.remove(force=True, v=True)
        client.close()


@pytest.fixture(scope="module")
def topics(session_runner: Any, kafka_server: Any) -> list[str]:
    args = {**kafka_server.connection_args(), "topics": DECLARED["topics"], "defaults": DECLARED["defaults"]}
    run = session_runner.run("prism_kafka_topics", args)
    assert run.rc == 0, run.output
    return [t["name"] for t in DECLARED["topics"]]


@pytest.fixture
def suite_args(app_db, redis_server, kafka_server, topics) -> dict[str, Any]:
    return {
        **{k: v for k, v in app_db.items() if k != "superuser"},
        **kafka_server.connection_args(),
        "kafka_topics": topics,
        "redis": {
            "host": "127.0.0.1",
            "port": redis_server["port"],
            "user": "default",
            "stats_user": "default",
            "maxmemory_policy": "allkeys-lru",
            "appendonly": True,
            "rdb_save": True,
        },
        "redis_password": redis_server["password"],
        "redis_stats_password": redis_server["password"],
        "not_deployed": {
            "weaviate": "weaviate is not deployed (integration test)",
            "monitoring": "prometheus is not deployed (integration test)",
        },
    }


def rows_of(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in result["rows"]}


def test_every_check_passes_twice_and_leaves_no_trace(runner, suite_args) -> None:
    results = [runner.run("prism_acceptance", suite_args) for _ in range(2)]
    for run in results:
        assert run.rc == 0 and not run.failed, run.output
        rows = rows_of(run.result)
        for name in CORE:
            assert rows[name]["status"] == "PASS", (rows[name], run.result["table"])
        assert rows["weaviate_operations"] == {
            "name": "weaviate_operations",
            "status": "NOT RUN HERE",
            "detail": "weaviate is not deployed (integration test)",
            "duration": rows["weaviate_operations"]["duration"],
        }
        assert rows["monitoring"]["status"] == "NOT RUN HERE"
        # The knowledge step of the workflow cannot run without Weaviate, and says so in its own row.
        assert rows["integration_workflow: knowledge"]["status"] == "NOT RUN HERE"
        assert run.result["failed_checks"] == [] and run.result["changed"] is False
        before, after = run.result["before"], run.result["after"]
        assert before["pg_rows"] == after["pg_rows"] and before["redis_keys"] == after["redis_keys"]
        grown = {t: after["kafka_end_offsets"][t] - n for t, n in before["kafka_end_offsets"].items()}
        assert {t: n for t, n in grown.items() if n} == run.result["produced"]
        print("\n".join(run.result["table"]))
        assert run.result["table"][-1].startswith("6 passed, 0 failed, 3 not run here")
    assert results[1].result["before"]["pg_rows"] == results[0].result["after"]["pg_rows"]


def test_a_wrong_expectation_fails_that_check_only(runner, suite_args) -> None:
    suite_args["redis"]["maxmemory_policy"] = "noeviction"
    suite_args["checks"] = ["redis_operations", "postgresql_basic"]
    run = runner.run("prism_acceptance", suite_args)
    assert run.rc == 0, run.output  # the module reports; the verify role fails the play
    rows = rows_of(run.result)
    assert run.result["failed_checks"] == ["redis_operations"]
    assert rows["redis_operations"]["detail"] == "maxmemory-policy is allkeys-lru, expected noeviction"
    assert rows["postgresql_basic"]["status"] == "PASS" and rows["no_trace"]["status"] == "PASS"


def test_leftovers_of_an_interrupted_run_are_a_trace(runner, suite_args) -> None:
    conn = psycopg2.connect(
        host=suite_args["login_host"],
        port=suite_args["login_port"],
        user=suite_args["login_user"],
        password=suite_args["login_password"],
        dbname=suite_args["login_db"],
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO public.orch_user_query (tenant_id, user_id, query_text) "
            "VALUES ('prism_verify_crashed1', 'u', 'left behind')"
        )
    try:
        suite_args["checks"] = ["postgresql_basic"]
        run = runner.run("prism_acceptance", suite_args)
        row = rows_of(run.result)["no_trace"]
        assert row["status"] == "FAIL"
        assert "orch_user_query: 1 rows of tenant prism_verify_crashed1" in row["detail"]
    finally:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM public.orch_user_query WHERE tenant_id = 'prism_verify_crashed1'")
        conn.close()


def test_check_mode_runs_nothing_and_says_so(runner, suite_args) -> None:
    run = runner.run("prism_acceptance", suite_args, check=True)
    assert run.rc == 0, run.output
    assert {row["status"] for row in run.result["rows"]} == {"NOT RUN HERE"}
    assert all(row["detail"].startswith("check mode") for row in run.result["rows"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"not_deployed": {"cassandra": "x"}}, "not_deployed has unknown services ['cassandra']"),
        ({"run_id": "Bad-Id"}, "run_id 'Bad-Id' is invalid"),
        ({"redis": None}, "redis is not set and not named in not_deployed"),
    ],
)
def test_bad_input_names_the_field(runner, suite_args, change, message) -> None:
    run = runner.run("prism_acceptance", {**suite_args, **change})
    assert run.failed and message in run.result["msg"], run.output


@pytest.fixture(scope="module")
def knowledge(session_runner: Any, weaviate_server: Any, app_db: dict[str, Any]) -> dict[str, Any]:
    """The shipped knowledge seeded as the weaviate role does (collection, objects, mirror rows)."""
    collection = STACK_FACTS["weaviate_collection"]
    args = {
        **weaviate_server.connection_args(),
        **app_db["superuser"],
        "collection": collection,
        "properties": WEAVIATE_DEFAULTS["weaviate_knowledge_properties"],
        "path": str(KNOWLEDGE),
        "tenant": "default",
    }
    run = session_runner.run("prism_weaviate_knowledge", args)
    assert run.rc == 0, run.output
    return {
        "host": weaviate_server.host,
        "port": weaviate_server.port,
        "grpc_port": weaviate_server.grpc_port,
        "collection": collection,
        "tenant": "default",
        "expected_objects": len(list(KNOWLEDGE.glob("*.yml"))),
        "title_property": "title",
        "content_property": "content",
    }


def test_weaviate_checks_against_the_seeded_knowledge(runner, suite_args, knowledge, weaviate_server) -> None:
    del suite_args["not_deployed"]["weaviate"]
    suite_args.update(weaviate=knowledge, weaviate_api_key=weaviate_server.api_key)
    suite_args["checks"] = ["weaviate_operations", "integration_workflow"]
    run = runner.run("prism_acceptance", suite_args)
    assert run.rc == 0 and not run.failed, run.output
    rows = rows_of(run.result)
    print("\n".join(run.result["table"]))
    assert rows["weaviate_operations"]["status"] == "PASS", rows["weaviate_operations"]
    assert f"{knowledge['expected_objects']} objects" in rows["weaviate_operations"]["detail"]
    assert rows["integration_workflow"]["status"] == "PASS", rows["integration_workflow"]
    assert "joined from orch_knowledge_metadata" in rows["integration_workflow"]["detail"]
    assert "integration_workflow: knowledge" not in rows
    assert rows["no_trace"]["status"] == "PASS", rows["no_trace"]
    count = knowledge["expected_objects"]
    assert run.result["before"]["weaviate_objects"] == run.result["after"]["weaviate_objects"] == count


def test_a_missing_knowledge_object_fails_weaviate_operations(
    runner, suite_args, knowledge, weaviate_server
) -> None:
    del suite_args["not_deployed"]["weaviate"]
    suite_args.update(weaviate={**knowledge, "expected_objects": knowledge["expected_objects"] + 1})
    suite_args.update(weaviate_api_key=weaviate_server.api_key, checks=["weaviate_operations"])
    run = runner.run("prism_acceptance", suite_args)
    row = rows_of(run.result)["weaviate_operations"]
    assert row["status"] == "FAIL"
    count = knowledge["expected_objects"]
    assert row["detail"] == f"ExternalKnowledge holds {count} objects, the knowledge files are {count + 1}"


def test_a_service_that_is_down_fails_its_checks_and_the_rest_still_runs(runner, suite_args) -> None:
    import socket

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    suite_args["redis"]["port"] = closed
    run = runner.run("prism_acceptance", suite_args)
    assert run.rc == 0 and not run.failed, run.output
    rows = rows_of(run.result)
    assert rows["postgresql_basic"]["status"] == rows["kafka_operations"]["status"] == "PASS"
    assert rows["redis_operations"]["status"] == "FAIL"
    assert rows["redis_operations"]["detail"].startswith("ConnectionError")
    assert rows["no_trace"]["status"] == "FAIL"
    assert "before the run: Redis could not be counted (ConnectionError" in rows["no_trace"]["detail"]
