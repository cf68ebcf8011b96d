"""Planning logic of prism_weaviate_knowledge: pure functions over property declarations, knowledge files,
object properties and mirror rows (the real server is exercised in tests/integration)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.prism_weaviate import describe_target, weaviate_argument_spec
from ansible.module_utils.prism_weaviate_knowledge import (
    KnowledgeError,
    load_documents,
    mirror_row,
    normalise,
    object_uuid,
    parse_document,
    parse_properties,
    plan_mirror,
    plan_objects,
    plan_properties,
    read_directory,
)
from module_stub import FailJson, FakeModule

REPO_ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE = REPO_ROOT / "files" / "knowledge"
DECLARED = yaml.safe_load((REPO_ROOT / "roles" / "weaviate" / "defaults" / "main.yml").read_text())[
    "weaviate_knowledge_properties"
]
SPECS = parse_properties(DECLARED)
GOOD = "title: T\ncontent: C\nsource: S\ndomain: safety\ntags: [a, b]\nupdated_at: 2026-03-01\n"


def test_shipped_knowledge_is_valid_and_keys_are_unique() -> None:
    documents = load_documents(read_directory(str(KNOWLEDGE)), "ExternalKnowledge", SPECS)
    assert len(documents) >= 20
    assert len({doc.uuid for doc in documents}) == len(documents)
    assert {doc.properties["domain"] for doc in documents} == {
        "maintenance",
        "quality",
        "safety",
        "operations",
    }


def test_uuid_is_deterministic_per_collection_and_key() -> None:
    assert object_uuid("ExternalKnowledge", "a") == object_uuid("ExternalKnowledge", "a")
    assert object_uuid("ExternalKnowledge", "a") != object_uuid("ExternalKnowledge", "b")
    assert object_uuid("ExternalKnowledge", "a") != object_uuid("Other", "a")
    doc = parse_document("lockout.yml", GOOD, "ExternalKnowledge", SPECS)
    assert doc.key == "lockout" and doc.uuid == object_uuid("ExternalKnowledge", "lockout")
    keyed = parse_document("x.yml", GOOD + "key: stable-key\n", "ExternalKnowledge", SPECS)
    assert keyed.key == "stable-key"


def test_dates_become_rfc3339_utc() -> None:
    doc = parse_document("d.yml", GOOD, "ExternalKnowledge", SPECS)
    assert doc.properties["updated_at"] == "2026-03-01T00:00:00Z"
    stamped = parse_document("d.yml", GOOD.replace("2026-03-01", "2026-03-01T09:30:00+02:00"), "K", SPECS)
    assert stamped.properties["updated_at"] == "2026-03-01T07:30:00Z"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("title: T\ncontent: C\nsource: S\n", "domain", "missing or empty"),
        (GOOD.replace("tags: [a, b]", "tags: a"), "tags", "list of strings"),
        (GOOD.replace("2026-03-01", "someday"), "updated_at", "must be a date"),
        (GOOD + "author: me\n", "author", "is not a property"),
        (GOOD.replace("title: T", "title: 42"), "title", "must be a string"),
        (GOOD + "key: ''\n", "key", "non-empty string"),
    ],
)
def test_malformed_document_names_file_and_field(text: str, field: str, words: str) -> None:
    with pytest.raises(KnowledgeError) as err:
        parse_document("bad.yml", text, "ExternalKnowledge", SPECS)
    assert err.value.details == {"file": "bad.yml", "field": field}
    assert err.value.msg.startswith(f"bad.yml: field '{field}'") and words in err.value.msg


def test_not_a_mapping_and_broken_yaml_name_the_file() -> None:
    for text in ("- a\n- b\n", "title: [unclosed\n"):
        with pytest.raises(KnowledgeError) as err:
            parse_document("broken.yml", text, "K", SPECS)
        assert err.value.details["file"] == "broken.yml"


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(KnowledgeError) as err:
        load_documents([("a.yml", GOOD + "key: k\n"), ("b.yml", GOOD + "key: k\n")], "K", SPECS)
    assert "b.yml: key 'k' is already used by a.yml" in err.value.msg


def test_properties_must_include_the_required_ones() -> None:
    with pytest.raises(KnowledgeError, match="must declare 'domain'"):
        parse_properties([p for p in DECLARED if p["name"] != "domain"])
    with pytest.raises(KnowledgeError, match="tokenization applies to text"):
        parse_properties([*DECLARED, {"name": "n", "data_type": "int", "tokenization": "word"}])
    with pytest.raises(KnowledgeError, match="declared twice"):
        parse_properties([*DECLARED, {"name": "title"}])


def test_plan_properties_adds_and_refuses_changes() -> None:
    existing = {spec.name: spec.comparable() for spec in SPECS}
    assert plan_properties(SPECS, None) == (SPECS, [], [])
    assert plan_properties(SPECS, existing) == ([], [], [])
    grown = parse_properties([*DECLARED, {"name": "plant_area", "tokenization": "field"}])
    to_add, refusals, _ = plan_properties(grown, existing)
    assert [spec.name for spec in to_add] == ["plant_area"] and refusals == []
    retyped = parse_properties(
        [dict(p, data_type="text") if p["name"] == "updated_at" else p for p in DECLARED]
    )
    _, refusals, _ = plan_properties(retyped, existing)
    assert refusals and refusals[0].startswith("property 'updated_at': data_type is 'date' in Weaviate")
    _, _, undeclared = plan_properties(SPECS, {**existing, "legacy": {"data_type": "text"}})
    assert undeclared == ["legacy"]


def test_plan_objects_create_update_keep_and_remove() -> None:
    docs = load_documents([("a.yml", GOOD), ("b.yml", GOOD)], "K", SPECS)
    a, b = docs
    stored_a = dict(a.properties, updated_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC), language=None)
    stray = "00000000-0000-0000-0000-000000000001"
    existing = {a.uuid: stored_a, stray: {"title": "x", "content": "y", "source": "s", "domain": "d"}}
    plan = plan_objects(docs, existing, SPECS, remove_absent=False)
    assert plan.create == [b] and plan.update == [] and plan.delete == [] and plan.unmanaged == [stray]
    assert set(plan.final) == {a.uuid, b.uuid, stray}
    existing[a.uuid] = dict(stored_a, content="old")
    plan = plan_objects(docs, existing, SPECS, remove_absent=True)
    assert plan.update == [a] and plan.delete == [stray] and stray not in plan.final


def test_normalise_ignores_empty_values() -> None:
    assert normalise({"tags": [], "language": None, "title": "t"}, SPECS) == {"title": "t"}


def test_mirror_row_and_plan() -> None:
    (doc,) = load_documents([("a.yml", GOOD)], "K", SPECS)
    row = mirror_row(doc.uuid, normalise(doc.properties, SPECS), "K")
    assert row["checksum"] == hashlib.sha256(b"C").hexdigest()
    assert row["metadata"] == {
        "collection": "K",
        "key": "a",
        "tags": ["a", "b"],
        "updated_at": "2026-03-01T00:00:00Z",
    }
    plan = plan_mirror([row], {})
    assert plan.insert == [row] and not plan.update and not plan.delete
    current = {doc.uuid: {k: v for k, v in row.items() if k != "knowledge_id"}}
    assert plan_mirror([row], current).insert == [] and plan_mirror([row], current).update == []
    current[doc.uuid]["checksum"] = "old"
    current["gone"] = dict(current[doc.uuid])
    plan = plan_mirror([row], current)
    assert plan.update == [row] and plan.delete == ["gone"]


def test_missing_weaviate_client_fails_with_missing_required_lib(monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible.module_utils.prism_weaviate as prism_weaviate
    from ansible.module_utils.basic import missing_required_lib

    prism_weaviate.ensure_weaviate_client(FakeModule())  # installed here: no failure
    monkeypatch.setattr(prism_weaviate, "HAS_WEAVIATE", False)
    monkeypatch.setattr(prism_weaviate, "WEAVIATE_IMPORT_ERROR", "Traceback ... No module named 'weaviate'")
    with pytest.raises(FailJson) as err:
        prism_weaviate.ensure_weaviate_client(FakeModule())
    (kwargs,) = err.value.args
    assert kwargs["msg"] == missing_required_lib("weaviate-client")


def test_describe_target_never_shows_the_key() -> None:
    params = {name: spec.get("default") for name, spec in weaviate_argument_spec().items()}
    params["weaviate_api_key"] = "secret-key"
    assert describe_target(params) == "http://127.0.0.1:8080 (gRPC 50051)"
