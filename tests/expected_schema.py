"""What the shipped schema must contain, in one place for the unit, integration and Molecule tests."""

ORCH_TABLES = frozenset(
    {
        "orch_task_manage",
        "orch_user_query",
        "orch_execution_plan",
        "orch_agent_subtask",
        "orch_constraint_violation",
        "orch_user_feedback",
        "orch_knowledge_metadata",
    }
)

# name: (table, index method, columns) as PostgreSQL prints them in pg_indexes.indexdef
NAMED_INDEXES = {
    "idx_task_user_status": ("orch_task_manage", "btree", "(user_id, status)"),
    "idx_query_parsed_intent": ("orch_user_query", "gin", "(parsed_intent)"),
    "idx_plan_task_graph": ("orch_execution_plan", "gin", "(task_graph)"),
}
