-- The database role of ferric-agent-api: what the agent API may touch, and
-- nothing more. The agent API serves untrusted machines; if it is ever
-- compromised, this role is what the attacker gets. It can read no BMC
-- credentials (nodes.driver_info, driver_internal_info), change no node's
-- configuration, delete nothing of value and see no other table.
--
-- Run it as a superuser (or the owner of Ferric's tables) in Ferric's
-- database, after `ferric migrate`, and again after every upgrade that adds
-- a migration (it is idempotent):
--
--   psql -d ferric -f deployments/database-roles.sql
--   psql -d ferric -c "ALTER ROLE ferric_agent_api PASSWORD '...'"
--
-- then point ferric-agent-api at it:
--   FERRIC_DATABASE_URL=postgres://ferric_agent_api:...@db/ferric?sslmode=verify-full
-- The public API and the conductors keep using the owner role; the agent
-- API's FERRIC_AUTO_MIGRATE must stay false (it cannot migrate, by design).

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferric_agent_api') THEN
        CREATE ROLE ferric_agent_api LOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO ferric_agent_api', current_database());
END
$$;

-- Start from nothing, so that a re-run after an upgrade leaves exactly this.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ferric_agent_api;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ferric_agent_api;
GRANT USAGE ON SCHEMA public TO ferric_agent_api;

-- The schema version, checked at start-up.
GRANT SELECT ON goose_db_version TO ferric_agent_api;

-- nodes: the state, lock and agent token columns, the properties, the
-- image to deploy and the steps of a manual clean, and the BMC address (derived from driver_info, without
-- its credentials). Never driver_info or driver_internal_info.
GRANT SELECT (id, uuid, name, driver, properties, instance_info, provision_state,
    target_provision_state, provision_updated_at, maintenance, reservation,
    reservation_expires_at, lock_token, agent_token_generation, agent_token_revealed,
    bmc_address, clean_steps, created_at)
    ON nodes TO ferric_agent_api;
-- Writes: a checkin resumes or fails a waiting node (provision state, last
-- error), an inspection updates properties, a lookup marks the token
-- revealed. It cannot bump the token generation (revoke), change
-- driver_info, take a node lock or delete a node.
GRANT UPDATE (provision_state, target_provision_state, last_error, provision_updated_at,
    updated_at, properties, agent_token_revealed)
    ON nodes TO ferric_agent_api;
-- Discovery enrolls nodes (in enroll, driver_info from the discovery rules).
GRANT INSERT ON nodes TO ferric_agent_api;
GRANT USAGE ON SEQUENCE nodes_id_seq TO ferric_agent_api;

-- ports: matching by MAC; discovery creates the new node's ports.
GRANT SELECT (id, address, node_id, created_at) ON ports TO ferric_agent_api;
GRANT INSERT ON ports TO ferric_agent_api;
GRANT USAGE ON SEQUENCE ports_id_seq TO ferric_agent_api;

-- The agent's own tables.
GRANT SELECT, INSERT, UPDATE ON agent_checkins TO ferric_agent_api;
GRANT SELECT, INSERT, UPDATE ON node_inventories TO ferric_agent_api;
GRANT SELECT, INSERT, DELETE ON discoveries TO ferric_agent_api;
GRANT USAGE ON SEQUENCE discoveries_id_seq TO ferric_agent_api;

-- Node history: written, and read only to avoid repeating an entry.
GRANT SELECT (node_id, event_type, severity, created_at), INSERT ON node_history TO ferric_agent_api;
GRANT USAGE ON SEQUENCE node_history_id_seq TO ferric_agent_api;

-- Tasks: a checkin queues the conductor task that continues the node's
-- work (and counts the queue, to refuse work when it is full). It cannot
-- claim, change or delete tasks.
GRANT SELECT (id, pool, state), INSERT ON tasks TO ferric_agent_api;
GRANT USAGE ON SEQUENCE tasks_id_seq TO ferric_agent_api;

-- Rows, not only columns. Column grants let the role write a node's
-- provision state and queue a task; these checks keep those writes to what
-- an agent's report can cause, so that a compromised agent API cannot
-- power off, clean or redeploy a node no agent is waiting on:
--   - a node's provision state, target and last error change only from a
--     state waiting for an agent to the state its report leads to (resumed:
--     deploying, cleaning, inspecting; failed: deploy, clean, inspect
--     failed);
--   - its properties change only during inspection (or in enroll, where
--     discovery works);
--   - new nodes (discovery) start in enroll;
--   - the only task it may queue resumes a node's deploy, clean or
--     inspection in the agent pool.
-- They run for every role but act only on this one and its members (a
-- superuser is not held to them).
CREATE OR REPLACE FUNCTION ferric_is_agent_api() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT current_user = 'ferric_agent_api'
        OR (pg_has_role(current_user, 'ferric_agent_api', 'MEMBER')
            AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))
$$;

CREATE OR REPLACE FUNCTION ferric_agent_api_node_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ferric_is_agent_api() THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.provision_state IS DISTINCT FROM 'enroll' THEN
            RAISE EXCEPTION 'permission denied: the agent API enrolls nodes in enroll only'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    IF (NEW.provision_state, NEW.target_provision_state, NEW.last_error)
            IS DISTINCT FROM (OLD.provision_state, OLD.target_provision_state, OLD.last_error)
       AND (OLD.provision_state, NEW.provision_state) NOT IN (
            ('wait call-back', 'deploying'), ('wait call-back', 'deploy failed'),
            ('clean wait', 'cleaning'), ('clean wait', 'clean failed'),
            ('inspect wait', 'inspecting'), ('inspect wait', 'inspect failed')) THEN
        RAISE EXCEPTION 'permission denied: the agent API may only resume or fail a node waiting for an agent'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.properties IS DISTINCT FROM OLD.properties
       AND OLD.provision_state NOT IN ('inspecting', 'inspect wait', 'enroll') THEN
        RAISE EXCEPTION 'permission denied: the agent API updates properties only during inspection'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS ferric_agent_api_node_check ON nodes;
CREATE TRIGGER ferric_agent_api_node_check BEFORE INSERT OR UPDATE ON nodes
    FOR EACH ROW EXECUTE FUNCTION ferric_agent_api_node_check();

CREATE OR REPLACE FUNCTION ferric_agent_api_task_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- IS NOT TRUE: a missing member makes the condition NULL, which must
    -- refuse too.
    IF ferric_is_agent_api() AND (NEW.kind = 'provision' AND NEW.pool = 'agent'
            AND NEW.args->>'phase' = 'resume'
            AND NEW.args->>'state' IN ('deploying', 'cleaning', 'inspecting')) IS NOT TRUE THEN
        RAISE EXCEPTION 'permission denied: the agent API queues only the resumption of a node''s work'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS ferric_agent_api_task_check ON tasks;
CREATE TRIGGER ferric_agent_api_task_check BEFORE INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION ferric_agent_api_task_check();
