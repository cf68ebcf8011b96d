-- Least privilege for the application.
-- orch_app is a NOLOGIN group role: it may read and write the orch_* rows and nothing else (no CREATE on
-- schema public, no DDL, no access to the migration history). The postgres role creates the LOGIN user
-- and makes it a member of orch_app; that user's password never appears in a migration.

-- Roles are cluster-wide: another database of the same cluster may have created it already.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'orch_app') THEN
        CREATE ROLE orch_app NOLOGIN;
    END IF;
END
$$;

COMMENT ON ROLE orch_app IS 'PRISM orchestration application: DML on orch_* tables only.';

-- Nobody gets schema public by default; only the roles granted here.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO orch_app;

GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE
    public.orch_task_manage,
    public.orch_user_query,
    public.orch_execution_plan,
    public.orch_agent_subtask,
    public.orch_constraint_violation,
    public.orch_user_feedback,
    public.orch_knowledge_metadata
TO orch_app;

-- Tables (and their sequences) that later migrations create, as the role running them, get the same
-- grants. The history table is created before any migration runs, so it stays out of reach.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO orch_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO orch_app;
