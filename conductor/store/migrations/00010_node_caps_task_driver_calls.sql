-- 1. Size caps on a node's JSON documents, so that repeated PATCHes (or an
-- agent's properties) cannot grow a row without bound. Measured as the
-- length in bytes of PostgreSQL's text of the jsonb value. The caps are
-- store.MaxNodeDocumentBytes; docs/operations.md lists them.
--
-- A trigger rather than CHECK constraints: a document is checked only when
-- a write changes it, so a node stored before the caps (over one of them)
-- can still be powered, locked and provisioned; only growing or replacing
-- that document is refused. The error is a check violation naming the
-- document's constraint, which the store turns into a 400.
--
-- 2. tasks.driver_call_at: when a task began a driver call that must not be
-- made twice (a power action: a second reboot is a real second reboot). It
-- is written, under the task's claim, before the call; a task taken over
-- with it set reads the BMC instead of calling again, as Ironic does not
-- re-run an interrupted power action.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION ferric_node_document_caps() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'INSERT' OR NEW.extra IS DISTINCT FROM OLD.extra) AND octet_length(NEW.extra::text) > 65536 THEN
        RAISE EXCEPTION 'extra is larger than 65536 bytes' USING ERRCODE = 'check_violation', CONSTRAINT = 'nodes_extra_size';
    END IF;
    IF (TG_OP = 'INSERT' OR NEW.properties IS DISTINCT FROM OLD.properties) AND octet_length(NEW.properties::text) > 65536 THEN
        RAISE EXCEPTION 'properties is larger than 65536 bytes' USING ERRCODE = 'check_violation', CONSTRAINT = 'nodes_properties_size';
    END IF;
    IF (TG_OP = 'INSERT' OR NEW.driver_info IS DISTINCT FROM OLD.driver_info) AND octet_length(NEW.driver_info::text) > 65536 THEN
        RAISE EXCEPTION 'driver_info is larger than 65536 bytes' USING ERRCODE = 'check_violation', CONSTRAINT = 'nodes_driver_info_size';
    END IF;
    IF (TG_OP = 'INSERT' OR NEW.instance_info IS DISTINCT FROM OLD.instance_info) AND octet_length(NEW.instance_info::text) > 2097152 THEN
        RAISE EXCEPTION 'instance_info is larger than 2097152 bytes' USING ERRCODE = 'check_violation', CONSTRAINT = 'nodes_instance_info_size';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER nodes_document_caps BEFORE INSERT OR UPDATE OF extra, properties, driver_info, instance_info ON nodes
    FOR EACH ROW EXECUTE FUNCTION ferric_node_document_caps();

ALTER TABLE tasks ADD COLUMN driver_call_at timestamptz;

-- +goose Down
ALTER TABLE tasks DROP COLUMN driver_call_at;
DROP TRIGGER nodes_document_caps ON nodes;
DROP FUNCTION ferric_node_document_caps();
