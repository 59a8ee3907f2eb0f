-- The node fields of Ironic's API 1.81 that clients such as Metal3 send at
-- enrollment and update, and the node's traits.

-- +goose Up
ALTER TABLE nodes
    -- The implementation chosen for each hardware interface, by interface
    -- ({"boot": "pxe", "deploy": "direct", ...}), filled with the driver's
    -- defaults when the node is created or its driver changes. An interface
    -- absent (nodes from before this column) is the driver's default.
    ADD COLUMN interfaces         jsonb   NOT NULL DEFAULT '{}',
    -- NULL: the conductor's setting (FERRIC_AUTOMATED_CLEAN) decides.
    ADD COLUMN automated_clean    boolean,
    ADD COLUMN protected          boolean NOT NULL DEFAULT false,
    ADD COLUMN protected_reason   text,
    ADD COLUMN retired            boolean NOT NULL DEFAULT false,
    ADD COLUMN retired_reason     text,
    ADD COLUMN network_data       jsonb   NOT NULL DEFAULT '{}',
    ADD COLUMN console_enabled    boolean NOT NULL DEFAULT false,
    ADD COLUMN target_raid_config jsonb   NOT NULL DEFAULT '{}';

CREATE TABLE node_traits (
    node_id    bigint      NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    trait      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, trait)
);

-- +goose Down
DROP TABLE node_traits;
ALTER TABLE nodes
    DROP COLUMN interfaces, DROP COLUMN automated_clean, DROP COLUMN protected,
    DROP COLUMN protected_reason, DROP COLUMN retired, DROP COLUMN retired_reason,
    DROP COLUMN network_data, DROP COLUMN console_enabled, DROP COLUMN target_raid_config;
