-- The conductor: node leases, durable tasks, conductor registry, node history.

-- +goose Up
ALTER TABLE nodes
    -- The exclusive lock is a lease: who holds it, until when, and a fencing
    -- token that grows with every acquisition so a holder whose lease ran out
    -- can no longer write.
    ADD COLUMN reservation            text,
    ADD COLUMN reservation_expires_at timestamptz,
    ADD COLUMN lock_token             bigint      NOT NULL DEFAULT 0,
    -- Periodic power sync: when the node is next due, and how many reads in
    -- a row have failed.
    ADD COLUMN power_sync_due_at      timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN power_sync_failures    integer     NOT NULL DEFAULT 0;

CREATE INDEX nodes_power_sync_due_idx ON nodes (power_sync_due_at);
CREATE INDEX nodes_waiting_idx ON nodes (provision_updated_at)
    WHERE provision_state IN ('wait call-back', 'clean wait', 'inspect wait');

CREATE TABLE tasks (
    id               bigserial   PRIMARY KEY,
    kind             text        NOT NULL,
    pool             text        NOT NULL CHECK (pool IN ('operator', 'agent', 'periodic')),
    node_id          bigint      REFERENCES nodes (id) ON DELETE CASCADE,
    -- The node's driver: only conductors serving it claim the task (NULL: any).
    driver           text,
    args             jsonb       NOT NULL DEFAULT '{}',
    state            text        NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempt          integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 1,
    timeout_ms       integer     NOT NULL,
    run_after        timestamptz NOT NULL DEFAULT now(),
    owner            text,
    lease_expires_at timestamptz,
    claim_token      bigint      NOT NULL DEFAULT 0,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);

CREATE INDEX tasks_queued_idx ON tasks (pool, run_after, id) WHERE state = 'queued';
CREATE INDEX tasks_running_idx ON tasks (lease_expires_at) WHERE state = 'running';
CREATE INDEX tasks_node_active_idx ON tasks (node_id) WHERE state IN ('queued', 'running');
CREATE INDEX tasks_finished_idx ON tasks (finished_at) WHERE state IN ('done', 'failed');

CREATE TABLE conductors (
    name            text        PRIMARY KEY,
    drivers         text[]      NOT NULL,
    conductor_group text        NOT NULL DEFAULT '',
    started_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE node_history (
    id          bigserial   PRIMARY KEY,
    uuid        uuid        NOT NULL UNIQUE,
    node_id     bigint      NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    severity    text        NOT NULL CHECK (severity IN ('INFO', 'WARNING', 'ERROR')),
    event_type  text        NOT NULL,
    event       text        NOT NULL,
    conductor   text,
    user_name   text
);

CREATE INDEX node_history_node_idx ON node_history (node_id, id);

-- +goose Down
DROP TABLE node_history;
DROP TABLE conductors;
DROP TABLE tasks;
ALTER TABLE nodes
    DROP COLUMN reservation, DROP COLUMN reservation_expires_at, DROP COLUMN lock_token,
    DROP COLUMN power_sync_due_at, DROP COLUMN power_sync_failures;
