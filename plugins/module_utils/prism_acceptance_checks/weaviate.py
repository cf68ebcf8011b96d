# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Weaviate check: the knowledge collection holds what the knowledge files and their mirror rows say, and BM25
by title finds each object with the mirrored checksum."""

from __future__ import annotations

import hashlib
from typing import Any

from ansible.module_utils.prism_acceptance import expect
from ansible.module_utils.prism_acceptance_checks.stack import Stack


def knowledge_rows(stack: Stack) -> list[tuple[str, str, str, str]]:
    """The mirror rows of the knowledge collection (tenant and collection of the weaviate role's seed)."""
    conf = stack.services.weaviate or {}
    with stack.pg().cursor() as cur:
        cur.execute(
            "SELECT knowledge_id::text, title, domain, checksum FROM public.orch_knowledge_metadata "
            "WHERE tenant_id = %s AND metadata->>'collection' = %s ORDER BY title",
            (conf.get("tenant", "default"), conf["collection"]),
        )
        return list(cur.fetchall())


def bm25_top(stack: Stack, query: str, properties: list[str] | None = None) -> Any:
    conf = stack.services.weaviate or {}
    collection = stack.weaviate().collections.use(conf["collection"])
    result = collection.query.bm25(query=query, query_properties=properties, limit=3)
    return result.objects[0] if result.objects else None


def check_weaviate_operations(stack: Stack) -> str:
    client = stack.weaviate()  # NOT RUN HERE when Weaviate is not deployed
    conf = stack.services.weaviate or {}
    name = conf["collection"]
    expect(client.collections.exists(name), f"collection {name} does not exist")
    count = stack.weaviate_count()
    expected = conf["expected_objects"]
    expect(count == expected, f"{name} holds {count} objects, the knowledge files are {expected}")
    rows = knowledge_rows(stack)
    expect(len(rows) == count, f"orch_knowledge_metadata mirrors {len(rows)} objects, Weaviate holds {count}")
    content_prop, title_prop = conf["content_property"], conf["title_property"]
    misses = []
    for knowledge_id, title, _domain, checksum in rows:
        top = bm25_top(stack, title, [title_prop])
        if top is None or str(top.uuid) != knowledge_id:
            misses.append(f"'{title}' -> {getattr(top, 'uuid', None)}, expected {knowledge_id}")
            continue
        content = str(top.properties.get(content_prop) or "")
        digest = hashlib.sha256(content.encode()).hexdigest()
        if digest != checksum:
            misses.append(
                f"{knowledge_id}: sha256 of {content_prop} {digest[:12]}, mirror says {checksum[:12]}"
            )
        if top.properties.get(title_prop) != title:
            misses.append(
                f"{knowledge_id}: {title_prop} {top.properties.get(title_prop)!r}, mirror says {title!r}"
            )
    expect(not misses, "BM25 by title: " + "; ".join(misses))
    return f"{name}: {count} objects = {expected} knowledge files = mirror rows; BM25 top hit and checksum right for all {len(rows)}"
