-- PRISM orchestration schema: the seven orch_* tables, their keys, checks and indexes.
-- Applied by the prism_pg_schema module in one transaction; applied migrations are immutable:
-- change the schema with a new V<next>__<slug>.sql file, never by editing this one.
--
-- Lineage: user query -> task -> execution plan -> agent subtask.
-- Delete rules (chosen per edge, see the comment on each foreign key):
--   * a task owns its plans and a plan owns its subtasks: deleting a task CASCADEs down that chain;
--   * a query that produced tasks cannot be deleted (RESTRICT): delete or archive its tasks first;
--   * constraint violations are safety/audit evidence: they block deleting their task (RESTRICT) and
--     survive re-planning (the subtask reference is SET NULL);
--   * feedback belongs to what it rates: it goes with its query or task (CASCADE).
-- Removing one tenant's rows therefore goes child -> parent: orch_user_feedback, orch_constraint_violation,
-- orch_task_manage (takes plans and subtasks with it), orch_user_query, orch_knowledge_metadata.
--
-- Every table carries tenant_id (NOT NULL DEFAULT 'default'); ids are UUIDs from gen_random_uuid()
-- (core since PostgreSQL 13, no pgcrypto needed).

-- Keeps updated_at current on every UPDATE; attached to each table below.
CREATE FUNCTION public.orch_set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION public.orch_set_updated_at() IS 'Trigger: set updated_at to now() on UPDATE.';

-- A request as the user typed it and how it was understood.
CREATE TABLE public.orch_user_query (
    query_id      uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text        NOT NULL DEFAULT 'default',
    user_id       text        NOT NULL,
    session_id    text,
    query_text    text        NOT NULL CHECK (btrim(query_text) <> ''),
    parsed_intent jsonb       NOT NULL DEFAULT '{}'::jsonb,
    status        text        NOT NULL DEFAULT 'received'
        CONSTRAINT orch_user_query_status_check
        CHECK (status IN ('received', 'parsing', 'planned', 'completed', 'failed', 'rejected')),
    response      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.orch_user_query IS 'User requests and their parsed intent (JSONB).';

-- Intent lookups (@>, ?) on the parsed request.
CREATE INDEX idx_query_parsed_intent ON public.orch_user_query USING gin (parsed_intent);
CREATE INDEX idx_query_user_created ON public.orch_user_query (user_id, created_at DESC);
CREATE INDEX idx_query_tenant_created ON public.orch_user_query (tenant_id, created_at DESC);

-- A unit of work the orchestrator manages for a user.
CREATE TABLE public.orch_task_manage (
    task_id       uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text        NOT NULL DEFAULT 'default',
    -- The query the task came from; NULL for system-initiated tasks (schedules, alarms).
    -- RESTRICT: a query's tasks are its history; deleting the query must not silently remove them.
    query_id      uuid        REFERENCES public.orch_user_query (query_id) ON DELETE RESTRICT,
    user_id       text        NOT NULL,
    title         text        NOT NULL CHECK (btrim(title) <> ''),
    description   text,
    priority      smallint    NOT NULL DEFAULT 5 CHECK (priority BETWEEN 1 AND 10),
    status        text        NOT NULL DEFAULT 'pending'
        CONSTRAINT orch_task_manage_status_check
        CHECK (status IN ('pending', 'planning', 'running', 'completed', 'failed', 'cancelled')),
    result        jsonb,
    error_message text,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    started_at    timestamptz,
    completed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orch_task_manage_times_check
        CHECK (completed_at IS NULL OR started_at IS NULL OR completed_at >= started_at)
);

COMMENT ON TABLE public.orch_task_manage IS 'Orchestrated tasks: status, priority and result per user request.';

-- A user's tasks by state (the dashboard and the dispatcher's main query).
CREATE INDEX idx_task_user_status ON public.orch_task_manage (user_id, status);
CREATE INDEX idx_task_query ON public.orch_task_manage (query_id);
CREATE INDEX idx_task_status_priority ON public.orch_task_manage (status, priority, created_at);
CREATE INDEX idx_task_tenant_created ON public.orch_task_manage (tenant_id, created_at DESC);

-- How a task will be carried out: a DAG of agent steps. Re-planning adds a new version.
CREATE TABLE public.orch_execution_plan (
    plan_id      uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text        NOT NULL DEFAULT 'default',
    -- CASCADE: a plan has no meaning without its task.
    task_id      uuid        NOT NULL REFERENCES public.orch_task_manage (task_id) ON DELETE CASCADE,
    plan_version integer     NOT NULL DEFAULT 1 CHECK (plan_version > 0),
    task_graph   jsonb       NOT NULL CHECK (jsonb_typeof(task_graph) = 'object'),
    status       text        NOT NULL DEFAULT 'draft'
        CONSTRAINT orch_execution_plan_status_check
        CHECK (status IN ('draft', 'approved', 'running', 'completed', 'failed', 'superseded')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- One row per version of a task's plan; its index also serves the task_id foreign key.
    CONSTRAINT orch_execution_plan_task_version_key UNIQUE (task_id, plan_version)
);

COMMENT ON TABLE public.orch_execution_plan IS 'Execution plans (task graph as JSONB), versioned per task.';

-- Graph queries (@>) over plan structure.
CREATE INDEX idx_plan_task_graph ON public.orch_execution_plan USING gin (task_graph);
CREATE INDEX idx_plan_status ON public.orch_execution_plan (status);

-- One agent's step within a plan.
CREATE TABLE public.orch_agent_subtask (
    subtask_id    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text        NOT NULL DEFAULT 'default',
    -- CASCADE: a subtask has no meaning without its plan.
    plan_id       uuid        NOT NULL REFERENCES public.orch_execution_plan (plan_id) ON DELETE CASCADE,
    agent_type    text        NOT NULL
        CONSTRAINT orch_agent_subtask_agent_type_check
        CHECK (agent_type IN ('monitoring', 'prediction', 'control', 'analysis')),
    agent_id      text,
    sequence_no   integer     NOT NULL DEFAULT 0 CHECK (sequence_no >= 0),
    status        text        NOT NULL DEFAULT 'pending'
        CONSTRAINT orch_agent_subtask_status_check
        CHECK (status IN ('pending', 'queued', 'running', 'completed', 'failed', 'skipped', 'cancelled')),
    input_data    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    output_data   jsonb,
    error_message text,
    retry_count   integer     NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
    started_at    timestamptz,
    completed_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orch_agent_subtask_times_check
        CHECK (completed_at IS NULL OR started_at IS NULL OR completed_at >= started_at)
);

COMMENT ON TABLE public.orch_agent_subtask IS 'Agent subtasks of a plan (monitoring, prediction, control, analysis).';

CREATE INDEX idx_subtask_plan_sequence ON public.orch_agent_subtask (plan_id, sequence_no);
-- Work queues: each agent type polls its own open subtasks.
CREATE INDEX idx_subtask_agent_status ON public.orch_agent_subtask (agent_type, status);

-- A constraint (safety, quality, resource, ...) a task or one of its subtasks broke.
CREATE TABLE public.orch_constraint_violation (
    violation_id    uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text        NOT NULL DEFAULT 'default',
    -- RESTRICT: violations are audit evidence; deleting a task must not erase them. Archive them first.
    task_id         uuid        NOT NULL REFERENCES public.orch_task_manage (task_id) ON DELETE RESTRICT,
    -- SET NULL: the record outlives re-planning (old plans and their subtasks may be deleted).
    subtask_id      uuid        REFERENCES public.orch_agent_subtask (subtask_id) ON DELETE SET NULL,
    constraint_name text        NOT NULL,
    constraint_type text        NOT NULL DEFAULT 'safety'
        CONSTRAINT orch_constraint_violation_type_check
        CHECK (constraint_type IN ('safety', 'quality', 'resource', 'regulatory', 'business')),
    severity        text        NOT NULL
        CONSTRAINT orch_constraint_violation_severity_check
        CHECK (severity IN ('info', 'warning', 'critical')),
    details         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    resolution      text,
    resolved_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.orch_constraint_violation IS 'Constraint violations raised while planning or executing tasks.';

CREATE INDEX idx_violation_task ON public.orch_constraint_violation (task_id);
CREATE INDEX idx_violation_subtask ON public.orch_constraint_violation (subtask_id);
-- Open violations by severity (alerting and the operator view).
CREATE INDEX idx_violation_open ON public.orch_constraint_violation (severity, created_at)
    WHERE resolved_at IS NULL;

-- What the user thought of an answer or a task's result.
CREATE TABLE public.orch_user_feedback (
    feedback_id   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     text        NOT NULL DEFAULT 'default',
    -- CASCADE on both: feedback is about its query or task and is erased with it (user data removal).
    query_id      uuid        REFERENCES public.orch_user_query (query_id) ON DELETE CASCADE,
    task_id       uuid        REFERENCES public.orch_task_manage (task_id) ON DELETE CASCADE,
    user_id       text        NOT NULL,
    feedback_type text        NOT NULL DEFAULT 'rating'
        CONSTRAINT orch_user_feedback_type_check
        CHECK (feedback_type IN ('rating', 'correction', 'comment', 'bug')),
    rating        smallint    CHECK (rating BETWEEN 1 AND 5),
    comment       text,
    metadata      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orch_user_feedback_target_check CHECK (num_nonnulls(query_id, task_id) >= 1)
);

COMMENT ON TABLE public.orch_user_feedback IS 'User feedback on a query answer or a task result.';

CREATE INDEX idx_feedback_query ON public.orch_user_feedback (query_id);
CREATE INDEX idx_feedback_task ON public.orch_user_feedback (task_id);
CREATE INDEX idx_feedback_user_created ON public.orch_user_feedback (user_id, created_at DESC);

-- Mirror of the Weaviate ExternalKnowledge objects: knowledge_id is the Weaviate object id.
CREATE TABLE public.orch_knowledge_metadata (
    knowledge_id uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text        NOT NULL DEFAULT 'default',
    source       text        NOT NULL,
    title        text        NOT NULL,
    domain       text        NOT NULL,
    -- Checksum of the object's content, to tell whether the mirror is current.
    checksum     text        NOT NULL,
    metadata     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.orch_knowledge_metadata IS 'Metadata of knowledge objects stored in Weaviate (id = Weaviate object id).';

CREATE INDEX idx_knowledge_tenant_domain ON public.orch_knowledge_metadata (tenant_id, domain);
CREATE INDEX idx_knowledge_source ON public.orch_knowledge_metadata (source);

CREATE TRIGGER orch_user_query_updated_at BEFORE UPDATE ON public.orch_user_query
    FOR EACH ROW EXECUTE FUNCTION public.orch_set_updated_at();
CREATE TRIGGER orch_task_manage_updated_at BEFORE UPDATE ON public.orch_task_manage
    FOR EACH ROW EXECUTE FUNCTION public.orch_set_updated_at();
CREATE TRIGGER orch_execution_plan_updated_at BEFORE UPDATE ON public.orch_execution_plan
    FOR EACH ROW EXECUTE FUNCTION public.orch_set_updated_at();
CREATE TRIGGER orch_agent_subtask_updated_at BEFORE UPDATE ON public.orch_agent_subtask
    FOR EACH ROW EXECUTE FUNCTION public.orch_set_updated_at();
CREATE TRIGGER orch_constraint_violation_updated_at BEFORE UPDATE ON public.orch_constraint_violation
    FOR EACH ROW EXECUTE FUNCTION public.orch_set_updated_at();
CREATE TRIGGER orch_user_feedback_updated_at BEFORE UPDATE ON public.orch_user_feedback
    FOR EACH ROW EXECUTE FUNCTION public.orch_set_updated_at();
CREATE TRIGGER orch_knowledge_metadata_updated_at BEFORE UPDATE ON public.orch_knowledge_metadata
    FOR EACH ROW EXECUTE FUNCTION public.orch_set_updated_at();
