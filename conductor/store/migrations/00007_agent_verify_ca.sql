-- The CA certificate IPA sends with its heartbeats when it made its own
-- TLS certificate (agent_verify_ca, Ironic API 1.68): recorded like the
-- agent URL, and, like it, refused if it changes within a boot.

-- +goose Up
ALTER TABLE agent_checkins ADD COLUMN agent_verify_ca text;

-- +goose Down
ALTER TABLE agent_checkins DROP COLUMN agent_verify_ca;
