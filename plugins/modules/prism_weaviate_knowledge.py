#!/usr/bin/python
# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: prism_weaviate_knowledge
short_description: Converge a Weaviate knowledge collection, its documents and their PostgreSQL mirror
description:
  - Reads every knowledge file (C(*.yml), C(*.yaml), C(*.json), one document each) in O(path), or the files
    given in O(documents), and validates all of them against O(properties) before anything is written; an
    error names the file and the field.
  - Creates the collection O(collection) without a vectorizer (objects carry no vectors, search is BM25 over
    the text properties) when it is missing, and adds declared properties that it lacks. A declared property
    whose data type, tokenization or index flags differ from the existing one is refused, saying why,
    and nothing is changed.
  - Each document becomes one object with a deterministic id, uuid5 of C(<collection>/<key>) (the key is the
    file's C(key) field, else its name without the suffix), so a re-run changes nothing. New and edited
    documents are written in batches of O(batch_size); a batch with a failed object fails the run naming it.
  - Objects that no file declares are deleted only with O(remove_absent=true); otherwise they stay and are
    reported in RV(unmanaged).
  - With O(mirror=true), the rows of C(public.orch_knowledge_metadata) of O(tenant) and this collection are
    converged in one transaction to the objects after the run, one row per object. knowledge_id is the object
    id, checksum the sha256 of its content, source, title and domain its properties, metadata the key, tags,
    language, updated_at and collection. Rows of objects that no longer exist are deleted.
options:
  path:
    description:
      - Directory on the managed host with the knowledge files. One of O(path) and O(documents) is required.
    type: path
  documents:
    description:
      - The knowledge files themselves, e.g. read on the control node with C(lookup('file')); each
        C(name) (the file name, used in messages and as the default key) and C(text) (YAML or JSON).
    type: list
    elements: dict
    suboptions:
      name:
        description: File name.
        type: str
        required: true
      text:
        description: The file's content.
        type: str
        required: true
  collection:
    description:
      - Name of the collection (starts with a capital letter).
    type: str
    default: ExternalKnowledge
  description:
    description:
      - Description of the collection, set when it is created.
    type: str
    default: ""
  properties:
    description:
      - The collection's properties. They must include C(key), C(title), C(content), C(source) and C(domain)
        (the last four of data type text). Adding one later is allowed; changing one is refused.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Property name.
        type: str
        required: true
      data_type:
        description: Data type.
        type: str
        choices: [text, "text[]", date, int, number, boolean]
        default: text
      tokenization:
        description: Tokenization of text and text[] (BM25 and filters split the text this way); default C(word).
        type: str
        choices: [word, lowercase, whitespace, field, trigram]
      index_searchable:
        description: BM25 index on this text property; default true.
        type: bool
      index_filterable:
        description: Filter index on this property; default true.
        type: bool
      description:
        description: What the property means.
        type: str
  bm25_b:
    description: BM25 length normalisation b of the collection.
    type: float
    default: 0.75
  bm25_k1:
    description: BM25 term frequency saturation k1 of the collection.
    type: float
    default: 1.2
  remove_absent:
    description:
      - Delete objects of the collection that no knowledge file declares (and their mirror rows).
    type: bool
    default: false
  batch_size:
    description: Objects per batch request.
    type: int
    default: 100
  mirror:
    description:
      - Converge the metadata rows in PostgreSQL (the C(login_*) options) in the same run.
    type: bool
    default: true
  tenant:
    description: tenant_id of the mirror rows.
    type: str
    default: default
extends_documentation_fragment:
  - prism_weaviate
  - prism_postgres
attributes:
  check_mode:
    description: >-
      Reads the collection, the objects and the mirror rows and reports what would be created, updated or
      deleted; nothing is written (the PostgreSQL transaction is rolled back).
    support: full
  diff_mode:
    description: >-
      Returns the collection's properties, every object (its properties with the content as a checksum)
      and the mirror rows, before and after.
    support: full
requirements:
  - PyYAML on the managed host (the knowledge files)
author:
  - PRISM orchestration team
"""

EXAMPLES = r"""
- name: ExternalKnowledge from files/knowledge, mirrored to orch_knowledge_metadata
  prism_weaviate_knowledge:
    weaviate_port: 8090
    weaviate_api_key: "{{ weaviate_api_key }}"
    path: /opt/prism/weaviate/knowledge
    properties:
      - {name: key, tokenization: field, index_searchable: false}
      - {name: title}
      - {name: content}
      - {name: source, tokenization: field}
      - {name: domain, tokenization: field}
      - {name: tags, data_type: "text[]"}
      - {name: language, tokenization: field, index_searchable: false}
      - {name: updated_at, data_type: date}
    login_port: 5432
    login_user: postgres
    login_password: "{{ postgres_superuser_password }}"
    login_db: prism
"""

RETURN = r"""
collection_created:
  description: Whether the collection was (in check mode, would be) created.
  returned: success
  type: bool
properties_added:
  description: Properties added to an existing collection.
  returned: success
  type: list
  elements: str
created:
  description: Keys of the documents whose objects were created.
  returned: success
  type: list
  elements: str
updated:
  description: Keys of the documents whose objects were replaced because the document changed.
  returned: success
  type: list
  elements: str
deleted:
  description: Ids of objects deleted because no file declares them (O(remove_absent=true)).
  returned: success
  type: list
  elements: str
unmanaged:
  description: Ids of objects that no file declares, left in place (O(remove_absent=false)).
  returned: success
  type: list
  elements: str
objects:
  description: Number of objects in the collection after the run.
  returned: success
  type: int
mirror:
  description: Mirror rows inserted, updated and deleted (knowledge ids).
  returned: success, with O(mirror=true)
  type: dict
  sample: {inserted: [], updated: [], deleted: []}
failed_objects:
  description: The objects of a batch that failed, each with its file, key, id and the server's message.
  returned: failure of a batch
  type: list
  elements: str
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402
from ansible.module_utils.prism_changes import ChangeTracker  # noqa: E402
from ansible.module_utils.prism_postgres import (  # noqa: E402
    connection_params,
    ensure_psycopg2,
    pg_error_text,
    postgres_argument_spec,
)
from ansible.module_utils.prism_postgres import describe_target as pg_target  # noqa: E402
from ansible.module_utils.prism_weaviate import (  # noqa: E402
    connect_client,
    weaviate_argument_spec,
    weaviate_error_text,
)
from ansible.module_utils.prism_weaviate_knowledge import (  # noqa: E402
    DATA_TYPES,
    TOKENIZATIONS,
    YAML_IMPORT_ERROR,
    KnowledgeError,
    add_properties,
    apply_mirror,
    create_collection,
    delete_objects,
    import_batches,
    load_documents,
    mirror_row,
    normalise,
    parse_properties,
    plan_mirror,
    plan_objects,
    plan_properties,
    read_collection,
    read_directory,
    read_mirror,
    read_objects,
    summary,
)


def argument_spec() -> dict:
    spec = weaviate_argument_spec()
    spec.update(postgres_argument_spec())
    spec.update(
        path={"type": "path"},
        documents={
            "type": "list",
            "elements": "dict",
            "options": {"name": {"type": "str", "required": True}, "text": {"type": "str", "required": True}},
        },
        collection={"type": "str", "default": "ExternalKnowledge"},
        description={"type": "str", "default": ""},
        properties={
            "type": "list",
            "elements": "dict",
            "required": True,
            "options": {
                "name": {"type": "str", "required": True},
                "data_type": {"type": "str", "choices": list(DATA_TYPES), "default": "text"},
                "tokenization": {"type": "str", "choices": list(TOKENIZATIONS), "no_log": False},
                "index_searchable": {"type": "bool"},
                "index_filterable": {"type": "bool"},
                "description": {"type": "str"},
            },
        },
        bm25_b={"type": "float", "default": 0.75},
        bm25_k1={"type": "float", "default": 1.2},
        remove_absent={"type": "bool", "default": False},
        batch_size={"type": "int", "default": 100},
        mirror={"type": "bool", "default": True},
        tenant={"type": "str", "default": "default"},
    )
    return spec


def _mirror(module: AnsibleModule, wanted: list[dict], tracker: ChangeTracker) -> dict:
    """Plan and (outside check mode) apply the mirror rows in one transaction."""
    import psycopg2

    params = module.params
    try:
        conn = psycopg2.connect(**connection_params(params))
    except psycopg2.Error as exc:
        module.fail_json(
            msg=f"Weaviate is converged, but the mirror could not connect to PostgreSQL at {pg_target(params)}: "
            f"{pg_error_text(exc)}. Check the login_* options; the next run mirrors again.",
            exception=traceback.format_exc(),
        )
    try:
        current = read_mirror(conn, params["tenant"], params["collection"])
        plan = plan_mirror(wanted, current)
        apply_mirror(conn, plan, params["tenant"])
        if module.check_mode:
            conn.rollback()
        else:
            conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        module.fail_json(
            msg=f"Weaviate is converged, but the mirror into orch_knowledge_metadata failed: {pg_error_text(exc)}",
            exception=traceback.format_exc(),
        )
    finally:
        conn.close()
    tracker.add(
        "mirror",
        current,
        {row["knowledge_id"]: {k: v for k, v in row.items() if k != "knowledge_id"} for row in wanted},
    )
    return {
        "inserted": [row["knowledge_id"] for row in plan.insert],
        "updated": [row["knowledge_id"] for row in plan.update],
        "deleted": plan.delete,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[("path", "documents")],
        mutually_exclusive=[("path", "documents")],
        supports_check_mode=True,
    )
    params = module.params
    if YAML_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=YAML_IMPORT_ERROR)
    if params["mirror"]:
        ensure_psycopg2(module)
    if params["batch_size"] < 1:
        module.fail_json(msg=f"batch_size must be at least 1 (is {params['batch_size']}).")
    name = params["collection"]
    try:
        specs = parse_properties(params["properties"])
        texts = (
            read_directory(params["path"])
            if params["path"]
            else [(doc["name"], doc["text"]) for doc in params["documents"]]
        )
        documents = load_documents(texts, name, specs)
    except KnowledgeError as exc:
        module.fail_json(msg=f"Refused, nothing was changed: {exc.msg}", **exc.details)

    tracker = ChangeTracker()
    client = connect_client(module)
    try:
        existing_props = read_collection(client, name)
        to_add, refusals, undeclared = plan_properties(specs, existing_props)
        if refusals:
            raise KnowledgeError(
                f"Refused, nothing was changed in {name}: " + " ".join(refusals), refusals=refusals
            )
        existing_objects = read_objects(client, name) if existing_props is not None else {}
        plan = plan_objects(documents, existing_objects, specs, params["remove_absent"])
        after_props = dict(existing_props or {})
        after_props.update({spec.name: spec.comparable() for spec in to_add})
        tracker.add("collection", existing_props, after_props)
        tracker.add(
            "objects",
            {
                object_id: summary(normalise(props, specs))
                for object_id, props in sorted(existing_objects.items())
            },
            {object_id: summary(props) for object_id, props in sorted(plan.final.items())},
        )
        if not module.check_mode:
            if existing_props is None:
                create_collection(
                    client, name, params["description"], specs, params["bm25_b"], params["bm25_k1"]
                )
            elif to_add:
                add_properties(client, name, to_add)
            import_batches(client, name, plan.create + plan.update, params["batch_size"])
            delete_objects(client, name, plan.delete)
    except KnowledgeError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except Exception as exc:  # the client raises many types (HTTP, gRPC, validation)
        module.fail_json(
            msg=f"Weaviate request failed for {name}: {weaviate_error_text(exc)}",
            exception=traceback.format_exc(),
        )
    finally:
        client.close()

    result = {
        "collection_created": existing_props is None,
        "properties_added": [spec.name for spec in to_add] if existing_props is not None else [],
        "created": [doc.key for doc in plan.create],
        "updated": [doc.key for doc in plan.update],
        "deleted": plan.delete,
        "unmanaged": plan.unmanaged,
        "objects": len(plan.final),
    }
    if params["mirror"]:
        wanted = [mirror_row(object_id, props, name) for object_id, props in sorted(plan.final.items())]
        result["mirror"] = _mirror(module, wanted, tracker)
    if undeclared:
        module.warn(
            f"{name} has properties that are not declared (left as they are): {', '.join(undeclared)}."
        )
    if plan.unmanaged:
        module.warn(
            f"{len(plan.unmanaged)} objects in {name} are declared by no knowledge file and were left "
            "(remove_absent is off): " + ", ".join(plan.unmanaged[:10])
        )
    module.exit_json(changed=tracker.changed, diff=tracker.diff(), **result)


if __name__ == "__main__":
    main()
