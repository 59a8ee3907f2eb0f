-- The command a checkin last handed out to a node's agent, and in which
-- wait: the node's history records each command once, when it is first
-- given, not at every checkin that repeats it.

-- +goose Up
ALTER TABLE agent_checkins
    -- The action handed out (deploy, clean, inspect, power_off).
    ADD COLUMN command_given     text,
    -- The node's provision_updated_at when it was handed out: the state
    -- entry (a wait) it belongs to. A new wait hands the command out anew.
    ADD COLUMN command_given_for timestamptz;

-- +goose Down
ALTER TABLE agent_checkins DROP COLUMN command_given_for, DROP COLUMN command_given;
