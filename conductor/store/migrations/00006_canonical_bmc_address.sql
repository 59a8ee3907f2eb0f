-- The BMC address lookups match agents by, in canonical form: an IP
-- address written any way in driver_info ("FD00:0000::3", "::ffff:10.0.0.7",
-- "[fd00::3]") is stored as the agent side writes it ("fd00::3",
-- "10.0.0.7"); anything else, a host name, lower-cased as before. Host
-- names are not resolved: such nodes match by MAC or serial number.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION ferric_canonical_host(h text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    a inet;
BEGIN
    h := NULLIF(btrim(h, ' []'), '');
    IF h IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        a := h::inet;
    EXCEPTION WHEN invalid_text_representation THEN
        RETURN lower(h); -- a host name
    END;
    IF masklen(a) <> (CASE family(a) WHEN 4 THEN 32 ELSE 128 END) THEN
        RETURN lower(h); -- a network, not a host
    END IF;
    IF family(a) = 6 AND host(a) LIKE '::ffff:%.%' THEN
        RETURN substring(host(a) FROM 8); -- IPv4-mapped: the IPv4 address
    END IF;
    RETURN host(a);
END
$$;
-- +goose StatementEnd

ALTER TABLE nodes DROP COLUMN bmc_address;
ALTER TABLE nodes ADD COLUMN bmc_address text GENERATED ALWAYS AS (ferric_canonical_host(COALESCE(
    NULLIF(btrim(driver_info->>'ipmi_address', ' []'), ''),
    substring(driver_info->>'redfish_address'
        FROM '^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/]*@)?(\[[^]/]*\]|[^:/?#]+)')
))) STORED;
CREATE INDEX nodes_bmc_address_idx ON nodes (bmc_address) WHERE bmc_address IS NOT NULL;

-- The agent API's role (deployments/database-roles.sql) read the column
-- dropped above: it reads the new one, so lookups keep working before the
-- script is run again.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'ferric_agent_api') THEN
        GRANT SELECT (bmc_address) ON nodes TO ferric_agent_api;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER TABLE nodes DROP COLUMN bmc_address;
ALTER TABLE nodes ADD COLUMN bmc_address text GENERATED ALWAYS AS (lower(COALESCE(
    NULLIF(btrim(driver_info->>'ipmi_address', ' []'), ''),
    NULLIF(btrim(substring(lower(driver_info->>'redfish_address')
        FROM '^(?:[a-z][a-z0-9+.-]*://)?(?:[^@/]*@)?(\[[^]/]*\]|[^:/?#]+)'), ' []'), '')
))) STORED;
CREATE INDEX nodes_bmc_address_idx ON nodes (bmc_address) WHERE bmc_address IS NOT NULL;
DROP FUNCTION ferric_canonical_host(text);
