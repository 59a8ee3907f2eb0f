package conductor

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// SetTargetRAIDConfig stores the RAID configuration the node is to be
// given (Ironic's PUT /v1/nodes/{node}/states/raid); an empty one clears
// it. A node whose RAID interface is no-raid is not found (404), as in
// Ironic; a configuration that breaks Ironic's RAID schema is 400; a held
// lock is 409.
func (c *Conductor) SetTargetRAIDConfig(ctx context.Context, ident string, config map[string]any) error {
	return store.Transact(ctx, c.db, func(tx *sqlx.Tx) error {
		n, err := c.nodeForAction(ctx, tx, ident)
		if err != nil {
			return err
		}
		if !configuresRAID(c.NodeInterface(n, "raid")) {
			return unsupportedExtension(fault.NotFound, n.Driver, "raid")
		}
		if len(config) > 0 {
			if err := checkRAIDConfig(config); err != nil {
				return fault.New(fault.Invalid, "RAID config validation error: %s", err)
			}
		}
		return store.SetTargetRAIDConfig(ctx, tx, n.ID, config)
	})
}

var (
	raidLevels     = []string{"JBOD", "0", "1", "2", "5", "6", "1+0", "5+0", "6+0"}
	raidDiskTypes  = []string{"hdd", "ssd"}
	raidInterfaces = []string{"sata", "scsi", "sas"}
)

// checkRAIDConfig checks a target RAID configuration against Ironic's RAID
// schema (ironic/drivers/raid_config_schema.json), with jsonschema's words.
func checkRAIDConfig(config map[string]any) error {
	if err := onlyKeys(config, "logical_disks"); err != nil {
		return err
	}
	raw, ok := config["logical_disks"]
	if !ok {
		return fmt.Errorf("'logical_disks' is a required property")
	}
	disks, ok := raw.([]any)
	if !ok {
		return fmt.Errorf("logical_disks is not of type 'array'")
	}
	if len(disks) == 0 {
		return fmt.Errorf("[] is too short")
	}
	roots := 0
	for _, d := range disks {
		disk, ok := d.(map[string]any)
		if !ok {
			return fmt.Errorf("a logical disk is not of type 'object'")
		}
		if err := checkLogicalDisk(disk); err != nil {
			return err
		}
		if root, _ := disk["is_root_volume"].(bool); root {
			roots++
		}
	}
	if roots > 1 {
		return fmt.Errorf("a RAID config cannot have more than one root volume: %d were specified", roots)
	}
	return nil
}

func checkLogicalDisk(disk map[string]any) error {
	if err := onlyKeys(disk, "raid_level", "size_gb", "volume_name", "is_root_volume", "share_physical_disks",
		"disk_type", "interface_type", "number_of_physical_disks", "controller", "physical_disks"); err != nil {
		return err
	}
	for _, key := range []string{"raid_level", "size_gb"} {
		if _, ok := disk[key]; !ok {
			return fmt.Errorf("'%s' is a required property", key)
		}
	}
	if err := oneOf(disk["raid_level"], raidLevels); err != nil {
		return err
	}
	if size := disk["size_gb"]; size != "MAX" && !isWholeNumber(size, 0) {
		return fmt.Errorf("%s is not valid under any of the given schemas", jsonText(size))
	}
	for _, key := range []string{"volume_name", "controller"} {
		if v, ok := disk[key]; ok {
			if _, isString := v.(string); !isString {
				return fmt.Errorf("%s is not of type 'string'", jsonText(v))
			}
		}
	}
	for _, key := range []string{"is_root_volume", "share_physical_disks"} {
		if v, ok := disk[key]; ok {
			if _, isBool := v.(bool); !isBool {
				return fmt.Errorf("%s is not of type 'boolean'", jsonText(v))
			}
		}
	}
	for key, allowed := range map[string][]string{"disk_type": raidDiskTypes, "interface_type": raidInterfaces} {
		if v, ok := disk[key]; ok {
			if err := oneOf(v, allowed); err != nil {
				return err
			}
		}
	}
	if v, ok := disk["number_of_physical_disks"]; ok && !isWholeNumber(v, 1) {
		return fmt.Errorf("%s is not a number of disks (an integer, at least 1)", jsonText(v))
	}
	if v, ok := disk["physical_disks"]; ok {
		if _, isList := v.([]any); !isList {
			return fmt.Errorf("%s is not valid under any of the given schemas", jsonText(v))
		}
		if _, ok := disk["controller"]; !ok {
			return fmt.Errorf("'controller' is a dependency of 'physical_disks'")
		}
	}
	return nil
}

// onlyKeys refuses members other than allowed.
func onlyKeys(m map[string]any, allowed ...string) error {
	var extra []string
	for k := range m {
		if !contains(allowed, k) {
			extra = append(extra, fmt.Sprintf("'%s'", k))
		}
	}
	if len(extra) == 0 {
		return nil
	}
	sort.Strings(extra)
	verb := "was"
	if len(extra) > 1 {
		verb = "were"
	}
	return fmt.Errorf("additional properties are not allowed (%s %s unexpected)", strings.Join(extra, ", "), verb)
}

func oneOf(v any, allowed []string) error {
	if s, ok := v.(string); ok && contains(allowed, s) {
		return nil
	}
	return fmt.Errorf("%s is not one of %s", jsonText(v), pyList(allowed))
}

// isWholeNumber reports whether v is a JSON integer of at least min.
func isWholeNumber(v any, min float64) bool {
	f, ok := v.(float64)
	return ok && f == math.Trunc(f) && f >= min
}

func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("'%s'", s)
	}
	return fmt.Sprint(v)
}
