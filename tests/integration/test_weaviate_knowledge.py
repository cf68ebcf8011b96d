"""prism_weaviate_knowledge against a real Weaviate 1.35 server and a real PostgreSQL 17 with the project's
schema: create and re-run, one edited document, a refused type change, a malformed file refused before any
write, BM25 ranking of the shipped knowledge, anonymous access refused, and the mirror one to one."""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO_ROOT, AnsibleRunner, PgServer, WeaviateServer

pytestmark = pytest.mark.integration

KNOWLEDGE = REPO_ROOT / "files" / "knowledge"
ROLE_DEFAULTS = yaml.safe_load((REPO_ROOT / "roles" / "weaviate" / "defaults" / "main.yml").read_text())
PROPERTIES = ROLE_DEFAULTS["weaviate_knowledge_properties"]
MIGRATION = REPO_ROOT / "files" / "migrations" / "postgres" / "V001__orch_tables.sql"

# Queries an agent would send, and the document that must rank first for each.
BM25_TOP_HITS = {
    "pump bearing vibration": "maint-centrifugal-pump-bearing",
    "lockout tagout energy isolation padlock": "safety-lockout-tagout",
    "torque wrench calibration": "quality-torque-tool-calibration",
    "light curtain press stopping time": "safety-press-light-curtain",
    "control chart out of control points": "quality-spc-control-chart-rules",
    "hydraulic oil contamination water": "maint-hydraulic-oil-analysis",
}


@pytest.fixture
def schema_db(pg_server: PgServer, database: str) -> str:
    """A fresh database with the orch_* tables of migration V001."""
    conn = pg_server.connect(database)
    with conn, conn.cursor() as cursor:
        cursor.execute(MIGRATION.read_text())
    conn.close()
    return database


@pytest.fixture
def collection_name(weaviate_server: WeaviateServer) -> Iterator[str]:
    """A collection name of this test only; deleted afterwards."""
    import secrets

    name = f"Knowledge{secrets.token_hex(4)}"
    yield name
    client = weaviate_server.client()
    try:
        client.collections.delete(name)
    finally:
        client.close()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A copy of the shipped knowledge that a test may edit."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


@dataclass
class Target:
    """One test's Weaviate collection, PostgreSQL database and knowledge copy, and the module's arguments."""

    server: WeaviateServer
    pg: PgServer
    db: str
    collection: str
    docs: Path
    args: dict[str, Any]


@pytest.fixture
def kb(
    weaviate_server: WeaviateServer, pg_server: PgServer, schema_db: str, collection_name: str, docs: Path
) -> Target:
    args = module_args(weaviate_server, pg_server, schema_db, collection_name, docs)
    return Target(weaviate_server, pg_server, schema_db, collection_name, docs, args)


def module_args(
    server: WeaviateServer, pg: PgServer, db: str, collection: str, path: Path, **extra: Any
) -> dict[str, Any]:
    return {
        **server.connection_args(),
        **pg.login_args(db),
        "collection": collection,
        "properties": PROPERTIES,
        "path": str(path),
        **extra,
    }


def weaviate_objects(server: WeaviateServer, collection: str) -> dict[str, dict[str, Any]]:
    client = server.client()
    try:
        return {str(o.uuid): dict(o.properties) for o in client.collections.get(collection).iterator()}
    finally:
        client.close()


def mirror_rows(pg: PgServer, db: str) -> dict[str, dict[str, Any]]:
    conn = pg.connect(db)
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT knowledge_id::text, tenant_id, source, title, domain, checksum, metadata, updated_at "
            "FROM public.orch_knowledge_metadata"
        )
        rows = {
            r[0]: {
                "tenant": r[1],
                "source": r[2],
                "title": r[3],
                "domain": r[4],
                "checksum": r[5],
                "metadata": r[6],
                "updated_at": r[7],
            }
            for r in cursor.fetchall()
        }
    conn.close()
    return rows


def assert_mirror_matches(server: WeaviateServer, pg: PgServer, db: str, collection: str) -> None:
    objects = weaviate_objects(server, collection)
    rows = mirror_rows(pg, db)
    assert set(rows) == set(objects)
    for object_id, props in objects.items():
        row = rows[object_id]
        assert row["checksum"] == hashlib.sha256(props["content"].encode()).hexdigest()
        assert (row["tenant"], row["source"], row["title"], row["domain"]) == (
            "default",
            props["source"],
            props["title"],
            props["domain"],
        )
        assert row["metadata"]["key"] == props["key"]


def test_create_then_rerun_changes_nothing(runner: AnsibleRunner, kb: Target) -> None:
    args = kb.args
    files = sorted(kb.docs.glob("*.yml"))

    check = runner.run("prism_weaviate_knowledge", args, check=True, diff=True)
    assert not check.failed, check.output
    assert check.result["changed"] is True and check.result["collection_created"] is True
    assert len(check.result["created"]) == len(files)
    assert weaviate_objects_or_none(kb.server, kb.collection) is None  # check mode wrote nothing
    assert mirror_rows(kb.pg, kb.db) == {}

    first = runner.run("prism_weaviate_knowledge", args)
    assert not first.failed, first.output
    assert first.result["changed"] is True
    assert sorted(first.result["created"]) == sorted(f.stem for f in files)
    assert first.result["objects"] == len(files) >= 20
    assert len(first.result["mirror"]["inserted"]) == len(files)
    assert_mirror_matches(kb.server, kb.pg, kb.db, kb.collection)

    second = runner.run("prism_weaviate_knowledge", args, diff=True)
    assert not second.failed, second.output
    diff = second.result.get("diff", {})
    drift = {
        k: (diff["before"][k], diff["after"][k])
        for k in diff.get("before", {})
        if diff["before"][k] != diff["after"][k]
    }
    assert second.result["changed"] is False, str(drift)[:3000]
    assert second.result["created"] == second.result["updated"] == []
    assert second.result["mirror"] == {"inserted": [], "updated": [], "deleted": []}

    # The collection has no vectorizer and BM25 on the text properties.
    client = kb.server.client()
    try:
        config = client.collections.get(kb.collection).config.get()
        assert config.vectorizer_config is None or str(config.vectorizer_config.vectorizer) == "none"
        searchable = {p.name for p in config.properties if p.index_searchable}
        assert {"title", "content", "tags"} <= searchable
        assert config.inverted_index_config.bm25.b == 0.75 and config.inverted_index_config.bm25.k1 == 1.2
    finally:
        client.close()


def weaviate_objects_or_none(server: WeaviateServer, collection: str) -> dict[str, Any] | None:
    client = server.client()
    try:
        if not client.collections.exists(collection):
            return None
    finally:
        client.close()
    return weaviate_objects(server, collection)


def test_edit_one_document_changes_only_that_object(runner: AnsibleRunner, kb: Target) -> None:
    args = kb.args
    assert not runner.run("prism_weaviate_knowledge", args).failed
    before_objects = weaviate_objects(kb.server, kb.collection)
    before_rows = mirror_rows(kb.pg, kb.db)

    edited = kb.docs / "safety-forklift-pedestrian.yml"
    data = yaml.safe_load(edited.read_text())
    data["content"] += "Forklift drivers renew their licence every three years.\n"
    edited.write_text(yaml.safe_dump(data, sort_keys=False))

    check = runner.run("prism_weaviate_knowledge", args, check=True, diff=True)
    assert check.result["changed"] is True and check.result["updated"] == ["safety-forklift-pedestrian"]
    assert weaviate_objects(kb.server, kb.collection) == before_objects

    run = runner.run("prism_weaviate_knowledge", args)
    assert not run.failed, run.output
    assert run.result["updated"] == ["safety-forklift-pedestrian"] and run.result["created"] == []
    after_objects = weaviate_objects(kb.server, kb.collection)
    changed = [
        object_id for object_id in after_objects if after_objects[object_id] != before_objects[object_id]
    ]
    assert len(changed) == 1 and after_objects[changed[0]]["key"] == "safety-forklift-pedestrian"
    assert run.result["mirror"]["updated"] == changed and run.result["mirror"]["inserted"] == []
    after_rows = mirror_rows(kb.pg, kb.db)
    assert [k for k in after_rows if after_rows[k] != before_rows[k]] == changed
    assert_mirror_matches(kb.server, kb.pg, kb.db, kb.collection)
    assert runner.run("prism_weaviate_knowledge", args).result["changed"] is False


def test_removal_only_with_the_flag(runner: AnsibleRunner, kb: Target) -> None:
    args = kb.args
    assert not runner.run("prism_weaviate_knowledge", args).failed
    (kb.docs / "operations-energy-peak-shaving.yml").unlink()

    kept = runner.run("prism_weaviate_knowledge", args)
    assert not kept.failed and kept.result["changed"] is False
    assert len(kept.result["unmanaged"]) == 1
    assert len(weaviate_objects(kb.server, kb.collection)) == 20

    removed = runner.run("prism_weaviate_knowledge", {**args, "remove_absent": True})
    assert not removed.failed, removed.output
    assert removed.result["deleted"] == kept.result["unmanaged"]
    assert removed.result["mirror"]["deleted"] == kept.result["unmanaged"]
    assert len(weaviate_objects(kb.server, kb.collection)) == 19
    assert_mirror_matches(kb.server, kb.pg, kb.db, kb.collection)


def test_added_property_is_allowed_and_a_type_change_refused(runner: AnsibleRunner, kb: Target) -> None:
    args = kb.args
    assert not runner.run("prism_weaviate_knowledge", args).failed

    grown = [*PROPERTIES, {"name": "plant_area", "description": "Area of the plant", "tokenization": "field"}]
    added = runner.run("prism_weaviate_knowledge", {**args, "properties": grown})
    assert not added.failed, added.output
    assert added.result["changed"] is True and added.result["properties_added"] == ["plant_area"]
    assert runner.run("prism_weaviate_knowledge", {**args, "properties": grown}).result["changed"] is False

    # No document sets plant_area, so only the type change itself can be refused.
    retyped = [{"name": "plant_area", "data_type": "int"} if p["name"] == "plant_area" else p for p in grown]
    refused = runner.run("prism_weaviate_knowledge", {**args, "properties": retyped})
    assert refused.failed
    assert (
        "property 'plant_area': data_type is 'text' in Weaviate and declared as 'int'"
        in refused.result["msg"]
    )
    assert "cannot change it in place" in refused.result["msg"]
    client = kb.server.client()
    try:
        types = {
            p.name: p.data_type.value for p in client.collections.get(kb.collection).config.get().properties
        }
    finally:
        client.close()
    assert types["plant_area"] == "text"


def test_malformed_file_is_refused_before_any_write(runner: AnsibleRunner, kb: Target) -> None:
    args = kb.args
    bad = kb.docs / "zz-bad-date.yml"
    bad.write_text("title: Bad\ncontent: text\nsource: x\ndomain: quality\nupdated_at: last tuesday\n")
    refused = runner.run("prism_weaviate_knowledge", args)
    assert refused.failed
    assert refused.result["msg"].startswith(
        "Refused, nothing was changed: zz-bad-date.yml: field 'updated_at'"
    )
    assert (refused.result["file"], refused.result["field"]) == ("zz-bad-date.yml", "updated_at")
    assert weaviate_objects_or_none(kb.server, kb.collection) is None
    assert mirror_rows(kb.pg, kb.db) == {}

    bad.write_text("title: Bad\ncontent: text\nsource: x\n")
    missing = runner.run("prism_weaviate_knowledge", args)
    assert missing.failed and (missing.result["file"], missing.result["field"]) == (
        "zz-bad-date.yml",
        "domain",
    )

    bad.write_text("title: Bad\ncontent: text\nsource: x\ndomain: quality\nauthor: me\n")
    unknown = runner.run("prism_weaviate_knowledge", args)
    assert unknown.failed and "field 'author' is not a property" in unknown.result["msg"]
    assert weaviate_objects_or_none(kb.server, kb.collection) is None


def test_bm25_ranks_the_expected_document_first(
    runner: AnsibleRunner,
    weaviate_server: WeaviateServer,
    pg_server: PgServer,
    schema_db: str,
    collection_name: str,
) -> None:
    from weaviate.classes.query import MetadataQuery

    args = module_args(weaviate_server, pg_server, schema_db, collection_name, KNOWLEDGE)
    assert not runner.run("prism_weaviate_knowledge", args).failed
    client = weaviate_server.client()
    try:
        collection = client.collections.get(collection_name)
        for query, expected in BM25_TOP_HITS.items():
            result = collection.query.bm25(query=query, limit=3, return_metadata=MetadataQuery(score=True))
            ranked = [o.properties["key"] for o in result.objects]
            assert ranked and ranked[0] == expected, f"{query!r}: {ranked}"
    finally:
        client.close()


def test_anonymous_access_gets_401(weaviate_server: WeaviateServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{weaviate_server.url}/v1/schema", timeout=5)
    assert err.value.code == 401
    request = urllib.request.Request(
        f"{weaviate_server.url}/v1/schema", headers={"Authorization": "Bearer wrong"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 401
    request = urllib.request.Request(
        f"{weaviate_server.url}/v1/schema", headers={"Authorization": f"Bearer {weaviate_server.api_key}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_wrong_api_key_fails_clearly(
    runner: AnsibleRunner, weaviate_server: WeaviateServer, docs: Path
) -> None:
    args = {
        **weaviate_server.connection_args(),
        "weaviate_api_key": "not-the-key",
        "properties": PROPERTIES,
        "path": str(docs),
        "mirror": False,
    }
    run = runner.run("prism_weaviate_knowledge", args)
    assert run.failed
    assert "Could not connect to Weaviate" in run.result["msg"] and "not-the-key" not in run.output
