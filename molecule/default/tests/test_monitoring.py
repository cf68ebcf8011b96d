"""Monitoring as deployed by site.yml (#6): Prometheus scrapes every target, the rule groups are loaded,
Alertmanager is ready, the exporters log in with least privilege, and every panel query of the generated
Grafana dashboard returns data from the live Prometheus. Grafana itself runs only where its image is
available (registry or archive: it cannot be built here); elsewhere its test says "not run here"."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import psycopg2
import pytest
import requests
import yaml
from conftest import PG_DB, PG_PORT, PREFIX, ROOT, assert_loopback_only, crash, inspect, secret

PROMETHEUS = "http://127.0.0.1:19090"
ALERTMANAGER = "http://127.0.0.1:19093"
GRAFANA_PORT = 13000
DASHBOARD = "/opt/prism-molecule/grafana/dashboards/prism-orchestration.json"
TEXTFILE_DIR = "/opt/prism-molecule/node_exporter/textfile"
INVENTORY = yaml.safe_load(
    (ROOT / "inventories" / "molecule" / "group_vars" / "all" / "prism.yml").read_text()
)
EXPORTERS = {
    "postgres": "postgres_exporter",
    "redis": "redis_exporter",
    "node": "node_exporter",
    "kafka": "kafka_exporter",
    "cadvisor": "cadvisor",
}
# The jobs this inventory deploys: Prometheus, Alertmanager and each exporter that is switched on.
EXPECTED_JOBS = (
    {"prometheus", "alertmanager"}
    | {job for job in EXPORTERS if INVENTORY.get(f"exporters_{job}_enabled", True)}
    | ({"kafka_jmx"} if INVENTORY.get("kafka_jmx_exporter_enabled", True) else set())
)
RULE_GROUPS = {
    "prism.availability",
    "prism.postgres",
    "prism.redis",
    "prism.kafka",
    "prism.containers",
    "prism.node",
    "prism.backup",
    "prism.meta",
}


def query(expr: str) -> list[dict]:
    answer = requests.get(f"{PROMETHEUS}/api/v1/query", params={"query": expr}, timeout=10)
    answer.raise_for_status()
    body = answer.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


SCRAPE_INTERVAL_S = 15


def _scraped_at(target: dict) -> float:
    """lastScrape as epoch seconds; Prometheus gives RFC 3339 with nanoseconds, Python reads microseconds."""
    stamp = re.sub(r"(\.\d{6})\d+", r"\1", target["lastScrape"]).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


@pytest.fixture(scope="module", autouse=True)
def fresh_round():
    """A target's health is that of its last scrape. Modules before this one restart Kafka and recreate
    containers, so a scrape made during that is stale; this module reads a round scraped after it began."""
    began = time.time()
    deadline = time.monotonic() + 3 * SCRAPE_INTERVAL_S
    while True:
        targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        stale = [t["labels"]["job"] for t in targets if _scraped_at(t) <= began]
        if not stale:
            print(f"every target scraped again {time.time() - began:.1f} s after this module began")
            return
        assert time.monotonic() < deadline, f"not scraped in {3 * SCRAPE_INTERVAL_S} s: {stale}"
        time.sleep(1)


def test_every_target_is_up():
    targets = requests.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    by_job = {t["labels"]["job"]: t for t in targets}
    assert set(by_job) >= EXPECTED_JOBS, f"missing scrape jobs: {EXPECTED_JOBS - set(by_job)}"
    down = {job: (t["health"], t["lastError"]) for job, t in by_job.items() if t["health"] != "up"}
    assert not down, down
    # The figures of each job's last scrape, for the record (measured here, not asserted).
    samples = {r["metric"]["job"]: float(r["value"][1]) for r in query("scrape_samples_scraped")}
    seconds = {r["metric"]["job"]: float(r["value"][1]) for r in query("scrape_duration_seconds")}
    for job in sorted(by_job):
        print(f"{job}: {samples.get(job, 0):.0f} samples, scraped in {seconds.get(job, 0):.3f} s")


def test_scrape_interval_is_15s():
    config = yaml.safe_load(
        requests.get(f"{PROMETHEUS}/api/v1/status/config", timeout=10).json()["data"]["yaml"]
    )
    assert config["global"]["scrape_interval"] == f"{SCRAPE_INTERVAL_S}s"
    assert {c["scrape_interval"] for c in config["scrape_configs"]} == {f"{SCRAPE_INTERVAL_S}s"}


def test_exporters_report_their_service_up():
    """up=1 only says the exporter answered; these say the exporter reached its service with its login."""
    assert [r["value"][1] for r in query("pg_up")] == ["1"]
    assert [r["value"][1] for r in query("redis_up")] == ["1"]
    assert query("node_memory_MemTotal_bytes")


def test_kafka_metrics_come_from_the_broker_and_the_lag_exporter():
    """The JMX exporter in the broker's JVM and the stack's lag exporter, each scraped within a second."""
    assert [r["value"][1] for r in query('kafka_server_kafkaserver_brokerstate{job="kafka_jmx"}')] == ["3"]
    assert [r["value"][1] for r in query("kafka_controller_kafkacontroller_activecontrollercount")] == ["1"]
    assert [r["value"][1] for r in query("sum(kafka_server_replicamanager_underreplicatedpartitions)")] == [
        "0"
    ]
    assert query('kafka_log_log_logendoffset{topic=~"orch[.].+"}'), "no per-partition log end offsets"
    assert query("kafka_server_raft_metrics_current_leader"), "no KRaft quorum metrics"
    assert [r["value"][1] for r in query('kafka_brokers{job="kafka"}')] == ["1"]
    partitions = query('kafka_topic_partitions{job="kafka",topic="orch.control.tasks"}')
    assert partitions and int(partitions[0]["value"][1]) >= 1, partitions
    for job in ("kafka_jmx", "kafka"):
        series = query(f'scrape_samples_scraped{{job="{job}"}}')[0]["value"][1]
        seconds = float(query(f'scrape_duration_seconds{{job="{job}"}}')[0]["value"][1])
        print(f"job {job}: {series} series, scrape {seconds:.3f} s")
        assert seconds <= 1.0, (job, seconds)


def test_the_jmx_agent_is_in_the_server_process_only(host):
    """KAFKA_OPTS with -javaagent is an argument of the image's run script, not the container's environment,
    which `docker exec` (the health probe, kafka-topics) would hand to every other JVM."""
    c = inspect(host, f"{PREFIX}_kafka")
    assert not [e for e in c["Config"]["Env"] if e.startswith("KAFKA_OPTS=")]
    assert any("-javaagent:" in arg for arg in c["Config"]["Cmd"]), c["Config"]["Cmd"]
    assert c["State"]["Health"]["Status"] == "healthy"
    assert (
        host.run(
            "docker exec %s kafka-topics.sh --bootstrap-server localhost:19092 --list", f"{PREFIX}_kafka"
        ).rc
        == 0
    )


needs_cadvisor = pytest.mark.skipif(
    "cadvisor" not in EXPECTED_JOBS, reason="cAdvisor is switched off in this inventory"
)


def _stack_containers(host) -> set[str]:
    out = host.check_output("docker ps --filter label=org.prism.stack=%s --format '{{.Names}}'", PREFIX)
    return set(out.split())


@needs_cadvisor
def test_cadvisor_reports_every_stack_container_by_name(host):
    """cAdvisor's cgroup readings and Docker's restart and OOM records, for each running container of the
    stack, labelled by container name; memory with the limit the registry set."""
    names = _stack_containers(host)
    for metric in (
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "container_spec_memory_limit_bytes",
        "container_last_seen",
        "prism_container_restarts_total",
        "prism_container_oom_kills_total",
        "prism_container_oom_killed",
    ):
        seen = {r["metric"].get("name") for r in query(f'{metric}{{job="cadvisor"}}')}
        assert names <= seen, (metric, sorted(names - seen))
    limits = {
        r["metric"]["name"]: int(float(r["value"][1]))
        for r in query('container_spec_memory_limit_bytes{job="cadvisor", name=~".+"}')
    }
    for name in names:
        assert limits[name] == inspect(host, name)["HostConfig"]["Memory"] > 0, name
    assert [r["value"][1] for r in query('prism_container_oom_source{job="cadvisor", source="docker"}')] == [
        "1"
    ]
    # No container environment in labels: some images take their secrets only from there.
    labels = requests.get(
        f"{PROMETHEUS}/api/v1/labels", params={"match[]": '{job="cadvisor"}'}, timeout=10
    ).json()["data"]
    assert "name" in labels and not [label for label in labels if label.startswith("container_env_")], labels
    series = query('scrape_samples_scraped{job="cadvisor"}')[0]["value"][1]
    seconds = float(query('scrape_duration_seconds{job="cadvisor"}')[0]["value"][1])
    print(f"job cadvisor: {series} series, scrape {seconds:.3f} s, {len(names)} containers")
    assert seconds <= 1.0, seconds


def _wait_for(expr: str, ok, timeout: float = 90) -> list[dict]:
    """Poll Prometheus until `ok(result)`; Prometheus scrapes and evaluates every 15 s."""
    deadline = time.monotonic() + timeout
    while True:
        result = query(expr)
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(3)


@needs_cadvisor
def test_a_crash_restart_is_counted(host):
    """kill -9 of an exporter's main process from the host: the restart policy starts it again, Docker
    counts the restart, and Prometheus has it from cAdvisor within a few scrapes."""
    name = f"{PREFIX}_node_exporter"
    expr = f'prism_container_restarts_total{{job="cadvisor", name="{name}"}}'
    before = int(float(query(expr)[0]["value"][1]))
    state = crash(host, name)
    assert state["Running"], state
    after = _wait_for(expr, lambda r: r and int(float(r[0]["value"][1])) > before)
    counted = int(float(after[0]["value"][1])) if after else None
    print(f"{name}: restarts before the kill {before}, after {counted}")
    assert counted == before + 1


@needs_cadvisor
def test_an_oom_kill_is_counted_and_fires_container_oom_killed(host):
    """A throwaway container of the stack with a 32 MiB limit allocates more: the kernel kills it, Docker
    records it, cAdvisor exports it and ContainerOOMKilled fires for that container."""
    name = f"{PREFIX}_oom_probe"
    image = inspect(host, f"{PREFIX}_cadvisor")["Config"]["Image"]
    host.run("docker rm -f %s", name)
    try:
        host.run_expect(
            [0],
            "docker run -d --name %s --label org.prism.stack=%s -m 32m --memory-swap 32m --network none"
            " --entrypoint sh %s -c 'head -c 256m /dev/zero | tail'",
            name,
            PREFIX,
            image,
        )
        kills = _wait_for(
            f'prism_container_oom_kills_total{{job="cadvisor", name="{name}"}}',
            lambda r: r and float(r[0]["value"][1]) >= 1,
        )
        state = inspect(host, name)["State"]
        print(f"{name}: Docker OOMKilled={state['OOMKilled']}, oom events {kills and kills[0]['value'][1]}")
        assert state["OOMKilled"] is True, state
        assert kills and float(kills[0]["value"][1]) >= 1, kills
        alerts = _wait_for(
            f'ALERTS{{alertname="ContainerOOMKilled", alertstate="firing", name="{name}"}}', bool
        )
        assert alerts, "ContainerOOMKilled did not fire"
    finally:
        host.run("docker rm -f %s", name)


def test_rule_groups_are_loaded():
    groups = requests.get(f"{PROMETHEUS}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert {g["name"] for g in groups} >= RULE_GROUPS
    names = {r["name"] for g in groups for r in g["rules"]}
    for alert in (
        "TargetDown",
        "RedisDown",
        "PostgresConnectionsNearMax",
        "RedisMemoryNearMax",
        "KafkaDLQMessages",
        "KafkaBrokerDown",
        "KafkaUnderReplicatedPartitions",
        "KafkaConsumerLagHigh",
        "ContainerRestarting",
        "ContainerMemoryNearLimit",
        "ContainerOOMKilled",
        "NodeDiskPressure",
        "PrismBackupTooOld",
        "Watchdog",
    ):
        assert alert in names, alert
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), [
        (r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"
    ]


def test_alertmanager_is_ready_and_receives_the_watchdog():
    assert requests.get(f"{ALERTMANAGER}/-/ready", timeout=10).status_code == 200
    alerts = requests.get(f"{ALERTMANAGER}/api/v2/alerts", timeout=10).json()
    assert "Watchdog" in {a["labels"]["alertname"] for a in alerts}


def test_redis_is_back_and_redis_down_resolved_after_the_side_effect():
    """The side effect stopped Redis until RedisDown fired; it must be up again now."""
    assert [r["value"][1] for r in query("redis_up")] == ["1"]


def test_ports_are_loopback_only(host):
    assert_loopback_only(host, f"{PREFIX}_prometheus", 9090, 19090)
    assert_loopback_only(host, f"{PREFIX}_alertmanager", 9093, 19093)


def test_exporters_publish_no_ports_and_cadvisor_alone_has_host_mounts(host):
    for job, name in EXPORTERS.items():
        if job not in EXPECTED_JOBS:
            continue
        c = inspect(host, f"{PREFIX}_{name}")
        assert c["State"]["Health"]["Status"] == "healthy", name
        assert not c["HostConfig"]["PortBindings"], name
        assert "no-new-privileges:true" in c["HostConfig"]["SecurityOpt"], name
        assert c["HostConfig"]["CapDrop"] == ["ALL"], name
        assert not c["HostConfig"]["CapAdd"], name
        assert c["HostConfig"]["Privileged"] is False, name
        assert not c["HostConfig"]["Devices"], name
        assert c["HostConfig"]["ReadonlyRootfs"] is True, name
        binds = {m["Source"]: m["RW"] for m in c["Mounts"] if m["Type"] == "bind"}
        if name == "cadvisor":
            assert {"/", "/sys", "/var/run", "/var/lib/docker"} <= set(binds), binds
            assert not any(binds.values()), f"cAdvisor's host mounts must be read-only: {binds}"
            # /dev/disk only where the host has one (a fresh CI machine had none; the engine refuses the bind).
            assert ("/dev/disk" in binds) == host.file("/dev/disk").is_directory, binds
        else:
            assert not set(binds) & {"/", "/sys", "/proc", "/var/run", "/var/lib/docker"}, (name, binds)


def test_no_exporter_password_in_the_container_configuration(host):
    for name, password in (
        ("postgres_exporter", "postgres_monitor_password"),
        ("redis_exporter", "redis_exporter_password"),
    ):
        raw = host.check_output("docker inspect %s", f"{PREFIX}_{name}")
        assert secret(password) not in raw, name


def test_postgres_exporter_login_has_pg_monitor_and_no_table_access():
    conn = psycopg2.connect(
        host="127.0.0.1",
        port=PG_PORT,
        dbname=PG_DB,
        user="prism_monitor",
        password=secret("postgres_monitor_password"),
        connect_timeout=5,
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_has_role(current_user, 'pg_monitor', 'MEMBER'), rolsuper, rolcreaterole "
                "FROM pg_roles WHERE rolname = current_user"
            )
            assert cur.fetchone() == (True, False, False)
            # pg_monitor reads every session's statistics ...
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE query IS NOT NULL")
            assert cur.fetchone()[0] >= 1
            # ... but no row of the application.
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT count(*) FROM public.orch_task_manage")
    finally:
        conn.close()


def test_redis_exporter_user_cannot_touch_keys():
    """The exporter ACL user (roles/redis) may read statistics but no key, and may not write."""
    from test_redis import Redis, RedisError

    conn = Redis("exporter", secret("redis_exporter_password"))
    try:
        assert "redis_version" in conn.call("INFO", "server")
        for command in (
            ("GET", "any"),
            ("SET", "any", "1"),
            ("CONFIG", "SET", "maxmemory", "1"),
            ("FLUSHALL",),
        ):
            with pytest.raises(RedisError, match="NOPERM"):
                conn.call(*command)
    finally:
        conn.close()


def test_textfile_directory_for_the_backup_job(host):
    """The backup job writes prism_backup.prom here; node_exporter (nobody) reads it through a read-only mount."""
    d = host.file(TEXTFILE_DIR)
    assert d.is_directory and d.mode == 0o755
    mounts = {m["Destination"]: m for m in inspect(host, f"{PREFIX}_node_exporter")["Mounts"]}
    assert mounts["/textfile"]["Source"] == TEXTFILE_DIR and mounts["/textfile"]["RW"] is False
    args = inspect(host, f"{PREFIX}_node_exporter")["Args"]
    assert "--collector.textfile.directory=/textfile" in args


def _panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p.get("type") != "row"]


def test_dashboard_is_generated_with_every_panel_answering(host):
    dashboard = json.loads(host.file(DASHBOARD).content_string)
    assert dashboard["title"] == "PRISM Orchestration DB Monitoring"
    panels = _panels(dashboard)
    assert len(panels) >= 10
    empty = [(p["title"], t["expr"]) for p in panels for t in p["targets"] if not query(t["expr"])]
    assert not empty, f"panels whose query returns no series: {empty}"


def test_grafana(host):
    c = json.loads(
        host.check_output("docker ps -a --filter name=^/%s$ --format '{{json .Names}}'", f"{PREFIX}_grafana")
        or "null"
    )
    if c is None:
        pytest.skip(
            "not run here: Grafana has no image (no registry answers, no grafana-oss-12.1.1.tar in the archive "
            "directory) and cannot be built (AGPL); its dashboard is proven against Prometheus above"
        )
    assert inspect(host, f"{PREFIX}_grafana")["State"]["Health"]["Status"] == "healthy"
    assert_loopback_only(host, f"{PREFIX}_grafana", 3000, GRAFANA_PORT)
    health = requests.get(f"http://127.0.0.1:{GRAFANA_PORT}/api/health", timeout=10)
    assert health.status_code == 200
    # Anonymous access is off; the admin password from the secrets works.
    assert requests.get(f"http://127.0.0.1:{GRAFANA_PORT}/api/search", timeout=10).status_code == 401
    found = requests.get(
        f"http://127.0.0.1:{GRAFANA_PORT}/api/search",
        params={"query": "PRISM Orchestration DB Monitoring"},
        auth=("admin", secret("grafana_admin_password")),
        timeout=10,
    )
    assert [d["title"] for d in found.json()] == ["PRISM Orchestration DB Monitoring"]
