# Copyright: PRISM orchestration team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole path of one user query: PostgreSQL rows from query to feedback, the agents' events on Kafka, the
result cached in Redis and knowledge found in Weaviate; a part whose service is not deployed gets its own
NOT RUN HERE row."""

from __future__ import annotations

import json

from ansible.module_utils.prism_acceptance import expect
from ansible.module_utils.prism_acceptance_checks.postgres import one
from ansible.module_utils.prism_acceptance_checks.stack import Stack
from ansible.module_utils.prism_acceptance_checks.weaviate import bm25_top, knowledge_rows
from ansible.module_utils.prism_kafka_dlq import AGENT_TYPES


def check_integration_workflow(stack: Stack) -> str:
    from psycopg2.extras import Json

    ns = stack.ns
    steps: list[str] = []
    with stack.pg().cursor() as cur:
        query_text = "Why did the pressure on line 3 rise, and what should we do?"
        intent = {"intent": "diagnose_and_act", "entities": {"line": 3, "metric": "pressure"}}
        query_id = one(
            cur,
            "INSERT INTO public.orch_user_query (tenant_id, user_id, session_id, query_text, parsed_intent, status) "
            "VALUES (%s, %s, %s, %s, %s, 'planned') RETURNING query_id",
            (ns.tenant, ns.user_id, ns.run_id, query_text, Json(intent)),
        )
        found = one(
            cur,
            "SELECT query_id FROM public.orch_user_query WHERE tenant_id = %s AND parsed_intent @> %s",
            (ns.tenant, Json({"intent": "diagnose_and_act"})),
        )
        expect(found == query_id, "the query is not found by its parsed_intent (@>)")
        task_id = one(
            cur,
            "INSERT INTO public.orch_task_manage (tenant_id, query_id, user_id, title, status, started_at) "
            "VALUES (%s, %s, %s, %s, 'running', now()) RETURNING task_id",
            (ns.tenant, query_id, ns.user_id, "Diagnose line 3 pressure"),
        )
        graph = {
            "nodes": [{"id": a, "agent": a} for a in AGENT_TYPES],
            "edges": [[AGENT_TYPES[i], AGENT_TYPES[i + 1]] for i in range(len(AGENT_TYPES) - 1)],
        }
        plan_id = one(
            cur,
            "INSERT INTO public.orch_execution_plan (tenant_id, task_id, task_graph, status) "
            "VALUES (%s, %s, %s, 'running') RETURNING plan_id",
            (ns.tenant, task_id, Json(graph)),
        )
        subtasks = {}
        for seq, agent in enumerate(AGENT_TYPES):
            subtasks[agent] = one(
                cur,
                "INSERT INTO public.orch_agent_subtask (tenant_id, plan_id, agent_type, sequence_no, status, input_data) "
                "VALUES (%s, %s, %s, %s, 'queued', %s) RETURNING subtask_id",
                (ns.tenant, plan_id, agent, seq, Json({"query_id": str(query_id)})),
            )
        steps.append("query (parsed_intent) -> task -> plan (task_graph) -> 4 subtasks")

        # Events: each subtask to its agent's tasks topic, consumed by the run's group, then its result.
        if stack.services.kafka is not None:
            wanted: dict[tuple[str, int, int], bytes] = {}
            for agent, subtask_id in subtasks.items():
                for stream in ("tasks", "results"):
                    topic = f"orch.{agent}.{stream}"
                    event = {"task_id": str(task_id), "subtask_id": str(subtask_id), "agent": agent}
                    key = f"{ns.key_prefix}{task_id}"
                    partition, offset = stack.produce(topic, key, event)
                    wanted[(topic, partition, offset)] = key.encode()
            records = stack.consume_exact(wanted)
            for record in records.values():
                event = json.loads(record.value)
                cur.execute(
                    "UPDATE public.orch_agent_subtask SET status = 'completed', started_at = now(), "
                    "completed_at = now(), output_data = %s WHERE subtask_id = %s AND tenant_id = %s",
                    (Json({"event_offset": record.offset}), event["subtask_id"], ns.tenant),
                )
            done = one(
                cur,
                "SELECT count(*) FROM public.orch_agent_subtask WHERE plan_id = %s AND status = 'completed'",
                (plan_id,),
            )
            expect(
                done == len(AGENT_TYPES), f"{done} of {len(AGENT_TYPES)} subtasks completed from their events"
            )
            steps.append(
                f"{len(wanted)} events on the agent tasks/results topics consumed, subtasks completed"
            )
        else:
            stack.extra_rows.append(
                ("integration_workflow: events", "NOT RUN HERE", stack.services.kafka_absent)
            )

        result = {"task_id": str(task_id), "answer": "valve V-3 sticking", "confidence": 0.9}
        cur.execute(
            "UPDATE public.orch_task_manage SET status = 'completed', completed_at = now(), result = %s "
            "WHERE task_id = %s",
            (Json(result), task_id),
        )
        if stack.services.redis is not None:
            app = stack.redis()
            cache_key = f"{ns.key_prefix}result:{task_id}"
            app.set(cache_key, json.dumps(result), ex=300)
            cached = json.loads(app.get(cache_key) or "null")
            ttl = app.ttl(cache_key)
            expect(cached == result and 0 < ttl <= 300, f"cached result {cached}, TTL {ttl}")
            app.delete(cache_key)
            steps.append(f"result cached in Redis (TTL {ttl}s)")
        else:
            stack.extra_rows.append(
                ("integration_workflow: cache", "NOT RUN HERE", stack.services.redis_absent)
            )

        if stack.services.weaviate is not None:
            rows = knowledge_rows(stack)
            expect(rows, "no knowledge metadata (tenant default) to look up")
            top = bm25_top(stack, rows[0][1])
            expect(top is not None, f"BM25 for '{rows[0][1]}' found nothing")
            joined = one(
                cur,
                "SELECT title FROM public.orch_knowledge_metadata WHERE knowledge_id = %s",
                (str(top.uuid),),
            )
            expect(
                joined is not None, f"BM25 top hit {top.uuid} has no metadata row in orch_knowledge_metadata"
            )
            steps.append(f"knowledge via BM25 -> '{joined}' joined from orch_knowledge_metadata")
        else:
            stack.extra_rows.append(
                ("integration_workflow: knowledge", "NOT RUN HERE", stack.services.weaviate_absent)
            )

        one(
            cur,
            "INSERT INTO public.orch_user_feedback (tenant_id, query_id, task_id, user_id, rating, comment) "
            "VALUES (%s, %s, %s, %s, 5, 'solved') RETURNING feedback_id",
            (ns.tenant, query_id, task_id, ns.user_id),
        )
        chain = one(
            cur,
            "SELECT count(*) FROM public.orch_user_query q JOIN public.orch_task_manage t USING (query_id) "
            "JOIN public.orch_execution_plan p ON p.task_id = t.task_id "
            "JOIN public.orch_agent_subtask s ON s.plan_id = p.plan_id "
            "JOIN public.orch_user_feedback f ON f.task_id = t.task_id "
            "WHERE q.query_id = %s AND t.status = 'completed'",
            (query_id,),
        )
        expect(chain == len(AGENT_TYPES), f"the joined path query->feedback has {chain} rows, expected 4")
        steps.append("feedback recorded; the whole path joins")
        removed = stack.delete_tenant_rows(cur)
        steps.append(f"{removed} rows removed")
    return "; ".join(steps)
