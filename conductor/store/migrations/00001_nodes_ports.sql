-- Nodes and their ports: the foundation schema.

-- +goose Up
CREATE TABLE nodes (
    id                     bigserial PRIMARY KEY,
    uuid                   uuid        NOT NULL UNIQUE,
    name                   text        UNIQUE,
    driver                 text        NOT NULL,
    driver_info            jsonb       NOT NULL DEFAULT '{}',
    driver_internal_info   jsonb       NOT NULL DEFAULT '{}',
    properties             jsonb       NOT NULL DEFAULT '{}',
    instance_info          jsonb       NOT NULL DEFAULT '{}',
    extra                  jsonb       NOT NULL DEFAULT '{}',
    instance_uuid          uuid        UNIQUE,
    power_state            text,
    target_power_state     text,
    provision_state        text        NOT NULL,
    target_provision_state text,
    provision_updated_at   timestamptz,
    maintenance            boolean     NOT NULL DEFAULT false,
    maintenance_reason     text,
    fault                  text,
    last_error             text,
    resource_class         text,
    conductor_group        text        NOT NULL DEFAULT '',
    owner                  text,
    lessee                 text,
    description            text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz,
    CONSTRAINT nodes_name_not_uuid CHECK (name IS NULL OR name !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
);

CREATE INDEX nodes_provision_state_idx ON nodes (provision_state);
CREATE INDEX nodes_driver_idx ON nodes (driver);

CREATE TABLE ports (
    id                    bigserial PRIMARY KEY,
    uuid                  uuid        NOT NULL UNIQUE,
    address               text        NOT NULL,
    node_id               bigint      NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    pxe_enabled           boolean     NOT NULL DEFAULT true,
    local_link_connection jsonb       NOT NULL DEFAULT '{}',
    physical_network      text,
    extra                 jsonb       NOT NULL DEFAULT '{}',
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz,
    CONSTRAINT ports_address_key UNIQUE (address),
    -- MACs are stored normalised: six lower-case hex pairs joined by colons.
    CONSTRAINT ports_address_normalised CHECK (address ~ '^([0-9a-f]{2}:){5}[0-9a-f]{2}$')
);

CREATE INDEX ports_node_id_idx ON ports (node_id);

-- +goose Down
DROP TABLE ports;
DROP TABLE nodes;
