-- The steps of a manual clean, kept on the node for the agent that carries
-- them out (the agent API reads this column, never driver_internal_info).

-- +goose Up
ALTER TABLE nodes ADD COLUMN clean_steps jsonb;

-- +goose Down
ALTER TABLE nodes DROP COLUMN clean_steps;
