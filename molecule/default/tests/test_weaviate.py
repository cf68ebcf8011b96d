"""Weaviate as deployed by site.yml: container and exposure, readiness, API keys only, the ExternalKnowledge
collection with one object per knowledge file, the BM25 top hit, and the PostgreSQL mirror one to one."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import weaviate
import yaml
from conftest import (
    PREFIX,
    ROOT,
    assert_healthy_and_hardened,
    assert_loopback_only,
    inspect,
    pg_connect,
    secret,
)
from weaviate.classes.init import Auth

NAME = f"{PREFIX}_weaviate"
PORT = 18090
GRPC_PORT = 15051
URL = f"http://127.0.0.1:{PORT}"
COLLECTION = "ExternalKnowledge"
KNOWLEDGE_FILES = sorted((ROOT / "files" / "knowledge").glob("*.yml"))


def get(path: str, key: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(URL + path, headers=headers), timeout=10
        ) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture()
def client():
    c = weaviate.connect_to_custom(
        http_host="127.0.0.1",
        http_port=PORT,
        http_secure=False,
        grpc_host="127.0.0.1",
        grpc_port=GRPC_PORT,
        grpc_secure=False,
        auth_credentials=Auth.api_key(secret("weaviate_api_key")),
    )
    yield c
    c.close()


def test_container_is_healthy_and_hardened(host):
    c = assert_healthy_and_hardened(host, NAME, f"{PREFIX}_weaviate_data", "/var/lib/weaviate")
    hc = c["HostConfig"]
    assert hc["CapDrop"] == ["ALL"] and hc["ReadonlyRootfs"] is True
    assert c["Config"]["User"] == "1000:1000"
    assert hc["Memory"] == 1024**3  # weaviate_memory from the molecule inventory
    env = dict(e.split("=", 1) for e in c["Config"]["Env"])
    assert env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "false"
    assert env["DEFAULT_VECTORIZER_MODULE"] == "none"
    assert env["ENABLE_MODULES"] == "backup-filesystem"
    assert env["GOMEMLIMIT"] == "800MiB"
    assert "/v1/.well-known/ready" in " ".join(c["Config"]["Healthcheck"]["Test"])
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts["/var/lib/weaviate/backups"]["Source"] == "/opt/prism-molecule/weaviate/backups"
    backups = host.file("/opt/prism-molecule/weaviate/backups")
    assert backups.is_directory and backups.uid == 1000


def test_ports_are_bound_to_loopback_only(host):
    assert_loopback_only(host, NAME, 8080, PORT)
    assert_loopback_only(host, NAME, 50051, GRPC_PORT)
    assert "2112/tcp" not in inspect(host, NAME)["HostConfig"]["PortBindings"]


def test_ready_and_version():
    assert get("/v1/.well-known/ready")[0] == 200
    status, body = get("/v1/meta", secret("weaviate_api_key"))
    assert status == 200
    meta = json.loads(body)
    assert meta["version"] == "1.35.2"
    assert "backup-filesystem" in meta["modules"]


def test_anonymous_and_wrong_key_get_401():
    assert get("/v1/schema")[0] == 401
    assert get("/v1/schema", "not-the-key")[0] == 401
    assert get("/v1/schema", secret("weaviate_api_key"))[0] == 200


def test_collection_has_no_vectorizer_and_bm25(client):
    config = client.collections.get(COLLECTION).config.get()
    assert config.vectorizer_config is None
    props = {p.name: p for p in config.properties}
    declared = yaml.safe_load((ROOT / "roles" / "weaviate" / "defaults" / "main.yml").read_text())
    assert set(props) == {p["name"] for p in declared["weaviate_knowledge_properties"]}
    assert props["updated_at"].data_type.value == "date" and props["tags"].data_type.value == "text[]"
    assert props["title"].index_searchable and props["content"].index_searchable


def test_one_object_per_knowledge_file(client):
    total = client.collections.get(COLLECTION).aggregate.over_all(total_count=True).total_count
    assert total == len(KNOWLEDGE_FILES) >= 20


def test_bm25_top_hit(client):
    result = client.collections.get(COLLECTION).query.bm25(query="lockout tagout energy isolation", limit=3)
    assert result.objects[0].properties["key"] == "safety-lockout-tagout"
    result = client.collections.get(COLLECTION).query.bm25(query="pump bearing vibration", limit=3)
    assert result.objects[0].properties["key"] == "maint-centrifugal-pump-bearing"


def test_postgres_mirror_matches_the_objects(client):
    objects = {str(o.uuid): o.properties for o in client.collections.get(COLLECTION).iterator()}
    conn = pg_connect()
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT knowledge_id::text, tenant_id, source, title, checksum FROM public.orch_knowledge_metadata "
            "WHERE metadata->>'collection' = %s",
            (COLLECTION,),
        )
        rows = {r[0]: r[1:] for r in cursor.fetchall()}
    conn.close()
    assert set(rows) == set(objects)
    for object_id, props in objects.items():
        assert rows[object_id] == (
            "default",
            props["source"],
            props["title"],
            hashlib.sha256(props["content"].encode()).hexdigest(),
        )


def test_object_ids_come_from_the_file_keys(client):
    import uuid

    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "urn:prism:knowledge")
    expected = {str(uuid.uuid5(namespace, f"{COLLECTION}/{Path(f).stem}")) for f in KNOWLEDGE_FILES}
    assert {str(o.uuid) for o in client.collections.get(COLLECTION).iterator()} == expected
