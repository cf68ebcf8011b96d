"""The backup scenario's fixtures: the default scenario's helpers (playbook runner, secrets, PostgreSQL
connection) and snapshots of the data that a backup must bring back."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

_DEFAULT = Path(__file__).resolve().parents[2] / "default" / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("prism_default_conftest", _DEFAULT)
assert _spec and _spec.loader
shared = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = shared  # its dataclasses look their module up there
_spec.loader.exec_module(shared)

ROOT = shared.ROOT
PREFIX = shared.PREFIX
BASE_DIR = Path("/opt/prism-molecule")
BACKUP_ROOT = BASE_DIR / "backups"
TEXTFILE = BASE_DIR / "node_exporter" / "textfile" / "prism_backup.prom"
KAFKA_PORT = 19092
WEAVIATE_URL = "http://127.0.0.1:18090"
COLLECTION = "ExternalKnowledge"
# This scenario's converge (molecule/backup/converge.yml) deploys no test service of the registry.
run_playbook = functools.partial(shared.run_playbook, with_probe=False)
secret = shared.secret
pg_connect = shared.pg_connect

# The seven tables, from the one list the schema tests use (tests/expected_schema.py, on sys.path via shared).
ORCH_TABLES = sorted(importlib.import_module("expected_schema").ORCH_TABLES)


def redis_cli(*args: str, db: int = 0) -> str:
    """redis-cli as the admin ACL user inside the Redis container (password in the exec environment)."""
    proc = subprocess.run(
        ["docker", "exec", "-e", "REDISCLI_AUTH", f"{PREFIX}_redis", "redis-cli", "--no-auth-warning"]
        + ["--user", "admin", "-n", str(db), *args],
        env={"REDISCLI_AUTH": secret("redis_admin_password"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return proc.stdout


def pg_snapshot() -> dict[str, tuple[int, str]]:
    """Per orch_* table: rows and an md5 over every row's text, in a stable order."""
    conn = pg_connect()
    try:
        with conn.cursor() as cur:
            result = {}
            for table in ORCH_TABLES:
                cur.execute(
                    f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM public.{table} t"
                )
                count, digest = cur.fetchone()
                result[table] = (count, digest)
            return result
    finally:
        conn.close()


def redis_snapshot() -> dict[str, object]:
    """Keys per database and a sha256 over (db, key, type, value) of every key."""
    keyspace = redis_cli("INFO", "keyspace")
    dbs = sorted(int(line.split(":")[0][2:]) for line in keyspace.splitlines() if line.startswith("db"))
    digest = hashlib.sha256()
    counts = {}
    for db in dbs:
        keys = sorted(k for k in redis_cli("--scan", db=db).splitlines() if k)
        counts[f"db{db}"] = len(keys)
        for key in keys:
            kind = redis_cli("TYPE", key, db=db).strip()
            reader = {
                "string": ("GET",),
                "hash": ("HGETALL",),
                "list": ("LRANGE", "0", "-1"),
                "set": ("SMEMBERS",),
            }
            value = redis_cli(*reader[kind][:1], key, *reader[kind][1:], db=db)
            lines = value.splitlines() if kind == "list" else sorted(value.splitlines())
            digest.update(json.dumps([db, key, kind, lines]).encode())
    return {"keys": counts, "digest": digest.hexdigest()}


def kafka_admin() -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=[f"127.0.0.1:{KAFKA_PORT}"], request_timeout_ms=20000)


def kafka_snapshot() -> dict[str, dict[str, str]]:
    """Topic-level config overrides of every topic that is not internal."""
    admin = kafka_admin()
    try:
        topics = sorted(t for t in admin.list_topics() if not t.startswith("__"))
        resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        described = admin.describe_configs(resources, config_filter="modified").get("topic", {})
        return {
            name: {
                key: str(entry["value"])
                for key, entry in configs.items()
                if entry.get("config_source") == "DYNAMIC_TOPIC_CONFIG"
            }
            for name, configs in sorted(described.items())
        }
    finally:
        admin.close()


def weaviate(path: str, body: object | None = None, method: str = "GET") -> object:
    request = urllib.request.Request(
        WEAVIATE_URL + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {secret('weaviate_api_key')}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        data = response.read()
    return json.loads(data) if data else None


def weaviate_snapshot() -> dict[str, object]:
    """Objects of the knowledge collection: count and a sha256 over (id, properties) of every object."""
    objects = weaviate(f"/v1/objects?class={COLLECTION}&limit=10000")["objects"]  # type: ignore[index]
    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: o["id"]):
        digest.update(json.dumps([obj["id"], obj["properties"]], sort_keys=True).encode())
    return {"objects": len(objects), "digest": digest.hexdigest()}


def snapshot() -> dict[str, object]:
    return {
        "postgres": pg_snapshot(),
        "redis": redis_snapshot(),
        "kafka": kafka_snapshot(),
        "weaviate": weaviate_snapshot(),
    }


def runs() -> list[str]:
    return sorted(p.name for p in BACKUP_ROOT.iterdir() if p.is_dir() and p.name[:1].isdigit())
