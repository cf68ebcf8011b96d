# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Knowledge seeding for Weaviate: the collection's properties, the knowledge documents, their objects and
the metadata mirror in PostgreSQL (``orch_knowledge_metadata``).

Pure functions (parsing, validation, planning) are unit-tested; the I/O functions take a weaviate-client v4
collection or a psycopg2 connection. Every document is validated before anything is written anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

YAML_IMPORT_ERROR: str | None
try:
    import yaml
except ImportError:
    yaml = None
    YAML_IMPORT_ERROR = traceback.format_exc()
else:
    YAML_IMPORT_ERROR = None

# Namespace of the deterministic object ids: uuid5(NAMESPACE, "<collection>/<key>").
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:prism:knowledge")
KNOWLEDGE_SUFFIXES = (".yml", ".yaml", ".json")
# The fields every document must carry; the mirror rows need them (title, source, domain NOT NULL).
REQUIRED_FIELDS = ("title", "content", "source", "domain")
KEY_FIELD = "key"
DATA_TYPES = ("text", "text[]", "date", "int", "number", "boolean")
TOKENIZATIONS = ("word", "lowercase", "whitespace", "field", "trigram")


class KnowledgeError(Exception):
    """A refusal or failure with a message for the user and extra result fields."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


# --- Properties --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PropertySpec:
    name: str
    data_type: str
    tokenization: str | None = None
    index_searchable: bool = True
    index_filterable: bool = True
    description: str = ""

    def comparable(self) -> dict[str, Any]:
        """What cannot change once the property exists (Weaviate has no property type or index migration)."""
        return {
            "data_type": self.data_type,
            "tokenization": self.tokenization if self.data_type in ("text", "text[]") else None,
            "index_searchable": self.index_searchable if self.data_type in ("text", "text[]") else False,
            "index_filterable": self.index_filterable,
        }


def parse_properties(items: list[dict[str, Any]]) -> list[PropertySpec]:
    """Validate the declared properties (module option ``properties``)."""
    specs: list[PropertySpec] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        name = item.get("name") or ""
        where = f"properties[{index}] ({name or 'no name'})"
        if not name or not name[0].isalpha() or not all(ch.isalnum() or ch == "_" for ch in name):
            raise KnowledgeError(
                f"{where}: name must start with a letter and hold only letters, digits and '_'."
            )
        if name in seen:
            raise KnowledgeError(f"{where}: the property is declared twice.")
        seen.add(name)
        data_type = item.get("data_type") or "text"
        if data_type not in DATA_TYPES:
            raise KnowledgeError(f"{where}: data_type '{data_type}' is not one of {', '.join(DATA_TYPES)}.")
        tokenization = item.get("tokenization")
        if data_type in ("text", "text[]"):
            tokenization = tokenization or "word"
            if tokenization not in TOKENIZATIONS:
                raise KnowledgeError(
                    f"{where}: tokenization '{tokenization}' is not one of {', '.join(TOKENIZATIONS)}."
                )
        elif tokenization:
            raise KnowledgeError(f"{where}: tokenization applies to text and text[] only, not {data_type}.")
        searchable = item.get("index_searchable")
        specs.append(
            PropertySpec(
                name=name,
                data_type=data_type,
                tokenization=tokenization,
                index_searchable=(searchable if searchable is not None else True)
                if data_type in ("text", "text[]")
                else False,
                index_filterable=bool(item.get("index_filterable", True) is not False),
                description=item.get("description") or "",
            )
        )
    for required in (*REQUIRED_FIELDS, KEY_FIELD):
        if required not in seen:
            raise KnowledgeError(
                f"properties must declare '{required}' (the module needs it for the object id and the mirror rows)."
            )
    for name in REQUIRED_FIELDS:
        spec = next(s for s in specs if s.name == name)
        if spec.data_type != "text":
            raise KnowledgeError(f"property '{name}' must have data_type text (is {spec.data_type}).")
    return specs


def plan_properties(
    declared: list[PropertySpec], existing: dict[str, dict[str, Any]] | None
) -> tuple[list[PropertySpec], list[str], list[str]]:
    """Compare declared with existing properties (None: the collection does not exist).

    Returns (to_add, refusals, undeclared existing names). A property may be added; its type, tokenization
    or index flags cannot change, so such a declaration is refused with the reason and the way out.
    """
    if existing is None:
        return list(declared), [], []
    to_add: list[PropertySpec] = []
    refusals: list[str] = []
    for spec in declared:
        current = existing.get(spec.name)
        if current is None:
            to_add.append(spec)
            continue
        wanted = spec.comparable()
        for attribute, value in wanted.items():
            if current.get(attribute) != value:
                refusals.append(
                    f"property '{spec.name}': {attribute} is {current.get(attribute)!r} in Weaviate and declared as "
                    f"{value!r}; Weaviate cannot change it in place. Keep {current.get(attribute)!r}, or add a new "
                    f"property under another name and move the data (a new collection plus re-import)."
                )
    undeclared = sorted(set(existing) - {spec.name for spec in declared})
    return to_add, refusals, undeclared


# --- Documents ---------------------------------------------------------------------------------------------


@dataclass
class Document:
    key: str
    file: str
    uuid: str
    properties: dict[str, Any]

    @property
    def checksum(self) -> str:
        return content_checksum(self.properties.get("content"))


def content_checksum(content: Any) -> str:
    """sha256 hex of the object's content (the mirror's checksum column)."""
    return hashlib.sha256(str(content or "").encode("utf-8")).hexdigest()


def object_uuid(collection: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{collection}/{key}"))


def _date_text(value: Any) -> str:
    """RFC 3339 in UTC with a Z, whatever form the date arrived in (YAML date, datetime, string)."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    else:
        text = str(value).strip()
        if len(text) == 10:
            text += "T00:00:00+00:00"
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_value(spec: PropertySpec, value: Any) -> tuple[Any, str | None]:
    """Convert a document value to what Weaviate stores, or say what is wrong with it."""
    if spec.data_type == "text":
        if not isinstance(value, str):
            return None, f"must be a string (is {type(value).__name__})"
        return value, None
    if spec.data_type == "text[]":
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return None, "must be a list of strings"
        return list(value), None
    if spec.data_type == "date":
        try:
            return _date_text(value), None
        except (TypeError, ValueError):
            return None, f"must be a date such as 2026-03-01 or 2026-03-01T08:00:00Z (is {value!r})"
    if spec.data_type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, "must be an integer"
        return value, None
    if spec.data_type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, "must be a number"
        return float(value), None
    if not isinstance(value, bool):
        return None, "must be true or false"
    return value, None


def parse_document(name: str, text: str, collection: str, properties: list[PropertySpec]) -> Document:
    """One knowledge file into a Document; errors name the file and the field."""
    try:
        # libyaml's safe loader where PyYAML has it: the same results, several times faster.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{name}: not valid YAML/JSON: {exc}", file=name) from exc
    if not isinstance(data, dict):
        raise KnowledgeError(
            f"{name}: must be a mapping of fields (title, content, source, domain, ...).", file=name
        )
    by_name = {spec.name: spec for spec in properties}
    key = data.get(KEY_FIELD, Path(name).stem)
    if not isinstance(key, str) or not key.strip():
        raise KnowledgeError(
            f"{name}: field '{KEY_FIELD}' must be a non-empty string.", file=name, field=KEY_FIELD
        )
    values: dict[str, Any] = {KEY_FIELD: key}
    for field_name, raw in data.items():
        if field_name == KEY_FIELD:
            continue
        spec = by_name.get(str(field_name))
        if spec is None:
            raise KnowledgeError(
                f"{name}: field '{field_name}' is not a property of {collection} "
                f"(known: {', '.join(sorted(by_name))}). Fix: remove it or declare the property.",
                file=name,
                field=str(field_name),
            )
        if raw is None:
            continue
        value, problem = _check_value(spec, raw)
        if problem:
            raise KnowledgeError(f"{name}: field '{field_name}' {problem}.", file=name, field=str(field_name))
        values[spec.name] = value
    for required in REQUIRED_FIELDS:
        if not str(values.get(required) or "").strip():
            raise KnowledgeError(
                f"{name}: field '{required}' is missing or empty; every document needs "
                f"{', '.join(REQUIRED_FIELDS)}.",
                file=name,
                field=required,
            )
    return Document(key=key, file=name, uuid=object_uuid(collection, key), properties=values)


def read_directory(path: str) -> list[tuple[str, str]]:
    """The knowledge files of a directory as (file name, text), sorted by name."""
    directory = Path(path)
    if not directory.is_dir():
        raise KnowledgeError(f"path {path} is not a directory of knowledge files.")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in KNOWLEDGE_SUFFIXES)
    texts: list[tuple[str, str]] = []
    for file in files:
        try:
            texts.append((file.name, file.read_text(encoding="utf-8")))
        except UnicodeDecodeError as exc:
            raise KnowledgeError(f"{file.name}: not UTF-8 text ({exc}).", file=file.name) from exc
    return texts


def load_documents(
    texts: list[tuple[str, str]], collection: str, properties: list[PropertySpec]
) -> list[Document]:
    """Every knowledge file, validated as a whole before anything is written."""
    if not texts:
        raise KnowledgeError(f"no knowledge files ({', '.join(KNOWLEDGE_SUFFIXES)}) were given.")
    documents: list[Document] = []
    owners: dict[str, str] = {}
    for name, text in texts:
        document = parse_document(name, text, collection, properties)
        if document.key in owners:
            raise KnowledgeError(
                f"{name}: key '{document.key}' is already used by {owners[document.key]}; keys must be unique.",
                file=name,
                field=KEY_FIELD,
            )
        owners[document.key] = name
        documents.append(document)
    return documents


# --- Objects -----------------------------------------------------------------------------------------------


def normalise(properties: dict[str, Any], specs: list[PropertySpec]) -> dict[str, Any]:
    """Properties as comparable plain values: dates as RFC 3339 UTC, no empty values."""
    by_name = {spec.name: spec for spec in specs}
    result: dict[str, Any] = {}
    for name, value in properties.items():
        if value is None or value == [] or name not in by_name:
            continue
        spec = by_name[name]
        if spec.data_type == "date":
            value = _date_text(value)
        elif spec.data_type == "text[]":
            value = list(value)
        elif spec.data_type == "number":
            value = float(value)
        result[name] = value
    return result


@dataclass
class ObjectPlan:
    create: list[Document] = field(default_factory=list)
    update: list[Document] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)
    # uuid -> properties after the run (the mirror is computed from it)
    final: dict[str, dict[str, Any]] = field(default_factory=dict)


def plan_objects(
    documents: list[Document],
    existing: dict[str, dict[str, Any]],
    specs: list[PropertySpec],
    remove_absent: bool,
) -> ObjectPlan:
    """Compare declared documents with the existing objects (uuid -> properties)."""
    plan = ObjectPlan()
    declared = {doc.uuid for doc in documents}
    for doc in documents:
        wanted = normalise(doc.properties, specs)
        current = existing.get(doc.uuid)
        if current is None:
            plan.create.append(doc)
        elif normalise(current, specs) != wanted:
            plan.update.append(doc)
        plan.final[doc.uuid] = wanted
    for object_id in sorted(set(existing) - declared):
        if remove_absent:
            plan.delete.append(object_id)
        else:
            plan.unmanaged.append(object_id)
            plan.final[object_id] = normalise(existing[object_id], specs)
    return plan


def summary(properties: dict[str, Any]) -> dict[str, Any]:
    """An object as shown in the diff: every property but the content, which is shown by its checksum."""
    shown = {name: value for name, value in properties.items() if name != "content"}
    shown["checksum"] = content_checksum(properties.get("content"))
    return shown


# --- Mirror ------------------------------------------------------------------------------------------------

MIRROR_TABLE = "public.orch_knowledge_metadata"
MIRROR_METADATA_FIELDS = ("key", "tags", "language", "updated_at")


def mirror_row(object_id: str, properties: dict[str, Any], collection: str) -> dict[str, Any]:
    """The orch_knowledge_metadata row of one object (knowledge_id = object uuid)."""
    metadata: dict[str, Any] = {"collection": collection}
    for name in MIRROR_METADATA_FIELDS:
        if properties.get(name) is not None:
            metadata[name] = properties[name]
    return {
        "knowledge_id": object_id,
        "source": properties.get("source") or "",
        "title": properties.get("title") or "",
        "domain": properties.get("domain") or "",
        "checksum": content_checksum(properties.get("content")),
        "metadata": metadata,
    }


@dataclass
class MirrorPlan:
    insert: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)


def plan_mirror(wanted: list[dict[str, Any]], current: dict[str, dict[str, Any]]) -> MirrorPlan:
    """Rows to insert, update (any mirrored column differs) and delete (no such object any more)."""
    plan = MirrorPlan()
    wanted_ids = set()
    for row in wanted:
        wanted_ids.add(row["knowledge_id"])
        have = current.get(row["knowledge_id"])
        if have is None:
            plan.insert.append(row)
        elif any(
            have.get(column) != row[column]
            for column in ("source", "title", "domain", "checksum", "metadata")
        ):
            plan.update.append(row)
    plan.delete = sorted(set(current) - wanted_ids)
    return plan


def read_mirror(conn: Any, tenant: str, collection: str) -> dict[str, dict[str, Any]]:
    """Current mirror rows of this tenant and collection, by knowledge_id."""
    with conn.cursor() as cursor:
        cursor.execute(
            f"SELECT knowledge_id::text, source, title, domain, checksum, metadata FROM {MIRROR_TABLE} "
            "WHERE tenant_id = %s AND metadata->>'collection' = %s",
            (tenant, collection),
        )
        return {
            row[0]: {
                "source": row[1],
                "title": row[2],
                "domain": row[3],
                "checksum": row[4],
                "metadata": row[5],
            }
            for row in cursor.fetchall()
        }


def apply_mirror(conn: Any, plan: MirrorPlan, tenant: str) -> None:
    """Write the planned rows in the connection's open transaction (the caller commits or rolls back)."""
    with conn.cursor() as cursor:
        for row in plan.insert:
            cursor.execute(
                f"INSERT INTO {MIRROR_TABLE} (knowledge_id, tenant_id, source, title, domain, checksum, metadata) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)",
                (
                    row["knowledge_id"],
                    tenant,
                    row["source"],
                    row["title"],
                    row["domain"],
                    row["checksum"],
                    json.dumps(row["metadata"], sort_keys=True),
                ),
            )
        for row in plan.update:
            # updated_at is set by the table's trigger (orch_set_updated_at).
            cursor.execute(
                f"UPDATE {MIRROR_TABLE} SET source = %s, title = %s, domain = %s, checksum = %s, metadata = %s::jsonb "
                "WHERE knowledge_id = %s AND tenant_id = %s",
                (
                    row["source"],
                    row["title"],
                    row["domain"],
                    row["checksum"],
                    json.dumps(row["metadata"], sort_keys=True),
                    row["knowledge_id"],
                    tenant,
                ),
            )
        if plan.delete:
            cursor.execute(
                f"DELETE FROM {MIRROR_TABLE} WHERE tenant_id = %s AND knowledge_id = ANY(%s::uuid[])",
                (tenant, plan.delete),
            )


# --- Weaviate I/O (weaviate-client v4) ---------------------------------------------------------------------


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def read_collection(client: Any, name: str) -> dict[str, dict[str, Any]] | None:
    """The collection's properties as {name: comparable attributes}, or None when it does not exist."""
    if not client.collections.exists(name):
        return None
    config = client.collections.get(name).config.get()
    properties: dict[str, dict[str, Any]] = {}
    for prop in config.properties:
        data_type = _enum_value(prop.data_type)
        is_text = data_type in ("text", "text[]")
        properties[prop.name] = {
            "data_type": data_type,
            "tokenization": _enum_value(prop.tokenization) if is_text else None,
            "index_searchable": bool(prop.index_searchable) if is_text else False,
            "index_filterable": bool(prop.index_filterable),
        }
    return properties


def _property(spec: PropertySpec) -> Any:
    from weaviate.classes.config import DataType, Property, Tokenization

    return Property(
        name=spec.name,
        data_type=DataType(spec.data_type),
        description=spec.description or None,
        tokenization=Tokenization(spec.tokenization) if spec.tokenization else None,
        index_searchable=spec.index_searchable if spec.data_type in ("text", "text[]") else None,
        index_filterable=spec.index_filterable,
    )


def create_collection(
    client: Any, name: str, description: str, specs: list[PropertySpec], bm25_b: float, bm25_k1: float
) -> None:
    """A collection without a vectorizer (objects carry no vectors; search is BM25 over the text properties)."""
    from weaviate.classes.config import Configure

    client.collections.create(
        name=name,
        description=description or None,
        properties=[_property(spec) for spec in specs],
        vector_config=Configure.Vectors.self_provided(),
        inverted_index_config=Configure.inverted_index(bm25_b=bm25_b, bm25_k1=bm25_k1, index_timestamps=True),
    )


def add_properties(client: Any, name: str, specs: list[PropertySpec]) -> None:
    collection = client.collections.get(name)
    for spec in specs:
        collection.config.add_property(_property(spec))


def read_objects(client: Any, name: str) -> dict[str, dict[str, Any]]:
    """Every object of the collection (uuid -> properties), without vectors."""
    collection = client.collections.get(name)
    return {str(obj.uuid): dict(obj.properties) for obj in collection.iterator(include_vector=False)}


def import_batches(client: Any, name: str, documents: list[Document], batch_size: int) -> int:
    """Write the documents in batches of batch_size; any failed object fails the run, named.

    A batch write of an existing id replaces the whole object, so an edited document loses fields that its
    file no longer has. Returns the number of batches sent.
    """
    from weaviate.classes.data import DataObject

    collection = client.collections.get(name)
    batches = 0
    for start in range(0, len(documents), batch_size):
        chunk = documents[start : start + batch_size]
        result = collection.data.insert_many(
            [DataObject(properties=doc.properties, uuid=doc.uuid) for doc in chunk]
        )
        batches += 1
        if result.has_errors:
            failed = [
                f"{chunk[index].file} (key {chunk[index].key}, id {chunk[index].uuid}): {error.message}"
                for index, error in sorted(result.errors.items())
            ]
            raise KnowledgeError(
                f"Batch {batches} of the import into {name}: {len(failed)} of {len(chunk)} objects failed: "
                + "; ".join(failed),
                failed_objects=failed,
            )
    return batches


def delete_objects(client: Any, name: str, object_ids: list[str]) -> None:
    collection = client.collections.get(name)
    for object_id in object_ids:
        collection.data.delete_by_id(object_id)
