-- Deploy agents: per-node token generations and the one-time reveal, the
-- BMC address agents are matched by, the latest checkin of each node's
-- agent, hardware inventories, and the record of discovered machines.

-- +goose Up
ALTER TABLE nodes
    -- Agent tokens carry the node's generation; bumping it (power off,
    -- reboot, a new provisioning step, an operator action) revokes every
    -- token minted before.
    ADD COLUMN agent_token_generation bigint  NOT NULL DEFAULT 1,
    -- Whether the token of the current generation has been handed out: it
    -- is revealed once per boot, later lookups get "******".
    ADD COLUMN agent_token_revealed   boolean NOT NULL DEFAULT false,
    -- The BMC host of driver_info (ipmi_address, or the host of
    -- redfish_address), lower-cased, so that lookups can match an agent's
    -- bmc_address through an index without reading driver_info, which holds
    -- BMC credentials the agent API must not see.
    ADD COLUMN bmc_address text GENERATED ALWAYS AS (lower(COALESCE(
        NULLIF(btrim(driver_info->>'ipmi_address', ' []'), ''),
        NULLIF(btrim(substring(lower(driver_info->>'redfish_address')
            FROM '^(?:[a-z][a-z0-9+.-]*://)?(?:[^@/]*@)?(\[[^]/]*\]|[^:/?#]+)'), ' []'), '')
    ))) STORED;

CREATE INDEX nodes_bmc_address_idx ON nodes (bmc_address) WHERE bmc_address IS NOT NULL;

-- The latest checkin (native) or heartbeat (IPA) of each node's agent: one
-- row per node, overwritten in place, hence the low fill factor (updates
-- stay on their page: no index churn at thousands of checkins a second).
CREATE TABLE agent_checkins (
    node_id          bigint      PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    token_generation bigint      NOT NULL,
    checked_in_at    timestamptz NOT NULL,
    source_address   text        NOT NULL,
    protocol         text        NOT NULL CHECK (protocol IN ('native', 'ipa')),
    agent_version    text,
    agent_status     text,
    agent_url        text,
    command_name     text,
    command_status   text,
    command_error    text
) WITH (fillfactor = 50);

-- The latest hardware inventory each node's agent sent (IPA's inventory
-- shape), with IPA's other inspection data.
CREATE TABLE node_inventories (
    node_id          bigint      PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    inventory        jsonb       NOT NULL,
    plugin_data      jsonb       NOT NULL DEFAULT '{}',
    -- system_vendor.serial_number, normalised; NULL when absent or a
    -- placeholder such as "To Be Filled By O.E.M.".
    system_serial    text,
    -- The node's token generation when it arrived: which boot sent it.
    token_generation bigint      NOT NULL,
    source_address   text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX node_inventories_serial_idx ON node_inventories (system_serial) WHERE system_serial IS NOT NULL;

-- Nodes enrolled by discovery, by source address (an IPv6 /64), for the
-- per-source quota.
-- No foreign key: deleting a discovered node does not give its quota back.
CREATE TABLE discoveries (
    id             bigserial   PRIMARY KEY,
    node_uuid      uuid        NOT NULL,
    source_address text        NOT NULL,
    discovered_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX discoveries_source_idx ON discoveries (source_address, discovered_at);

-- +goose Down
DROP TABLE discoveries;
DROP TABLE node_inventories;
DROP TABLE agent_checkins;
DROP INDEX nodes_bmc_address_idx;
ALTER TABLE nodes
    DROP COLUMN bmc_address, DROP COLUMN agent_token_revealed, DROP COLUMN agent_token_generation;
