-- Chassis, the chassis a node sits in, and indexes for the operator API's
-- listings.

-- +goose Up
CREATE TABLE chassis (
    id          bigserial   PRIMARY KEY,
    uuid        uuid        NOT NULL UNIQUE,
    description text,
    extra       jsonb       NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz
);

-- No ON DELETE action: a chassis that still holds nodes cannot be deleted.
ALTER TABLE nodes ADD COLUMN chassis_id bigint REFERENCES chassis (id);

CREATE INDEX nodes_chassis_id_idx ON nodes (chassis_id) WHERE chassis_id IS NOT NULL;

-- Keyset paging in the orders clients ask for most (sort_key=name,
-- sort_key=created_at): without these, every page sorts the whole table.
-- The expressions match store.NodeSortKeys.
CREATE INDEX nodes_name_sort_idx ON nodes ((COALESCE(name, '')), id);
CREATE INDEX nodes_created_at_sort_idx ON nodes (created_at, id);

-- +goose Down
DROP INDEX nodes_created_at_sort_idx;
DROP INDEX nodes_name_sort_idx;
DROP INDEX nodes_chassis_id_idx;
ALTER TABLE nodes DROP COLUMN chassis_id;
DROP TABLE chassis;
