package publicapi

import (
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/redact"
)

// timestamp formats times as Ironic does (ISO 8601 with an offset).
func timestamp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

func str(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func resourceLinks(base, kind, id string) []gin.H {
	return []gin.H{link(base+"/v1/"+kind+"/"+id, "self"), link(base+"/"+kind+"/"+id, "bookmark")}
}

// nodeSummaryFields are a list item's fields without detail or fields=.
var nodeSummaryFields = []string{"uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance", "links"}

// nodeDoc renders a node in full, secrets masked, as the client's version
// expects it.
func nodeDoc(n *store.Node, base string, v Version) gin.H {
	provisionState := any(n.ProvisionState)
	if !v.AtLeast(2) && n.ProvisionState == conductor.StateAvailable {
		provisionState = nil // API 1.1 spelled "available" as no state
	}
	created := n.CreatedAt
	return gin.H{
		"uuid":                   n.UUID,
		"name":                   str(n.Name),
		"driver":                 n.Driver,
		"driver_info":            redact.Secrets(n.DriverInfo),
		"driver_internal_info":   redact.Secrets(n.DriverInternalInfo),
		"properties":             n.Properties,
		"instance_info":          redact.Secrets(n.InstanceInfo, "image_url"),
		"instance_uuid":          str(n.InstanceUUID),
		"extra":                  n.Extra,
		"power_state":            str(n.PowerState),
		"target_power_state":     str(n.TargetPowerState),
		"provision_state":        provisionState,
		"target_provision_state": str(n.TargetProvisionState),
		"provision_updated_at":   timestamp(n.ProvisionUpdatedAt),
		"maintenance":            n.Maintenance,
		"maintenance_reason":     str(n.MaintenanceReason),
		"fault":                  str(n.Fault),
		"last_error":             str(n.LastError),
		"reservation":            nil,
		"conductor_group":        n.ConductorGroup,
		"resource_class":         str(n.ResourceClass),
		"owner":                  str(n.Owner),
		"lessee":                 str(n.Lessee),
		"description":            str(n.Description),
		"console_enabled":        false,
		"protected":              false,
		"retired":                false,
		"traits":                 []string{},
		"created_at":             timestamp(&created),
		"updated_at":             timestamp(n.UpdatedAt),
		"links":                  resourceLinks(base, "nodes", n.UUID),
		"ports":                  resourceLinks(base, "nodes", n.UUID+"/ports"),
		"states":                 resourceLinks(base, "nodes", n.UUID+"/states"),
	}
}

// pick keeps only the named keys of doc.
func pick(doc gin.H, keys []string) gin.H {
	out := make(gin.H, len(keys))
	for _, k := range keys {
		if v, ok := doc[k]; ok {
			out[k] = v
		}
	}
	return out
}

var portSummaryFields = []string{"uuid", "address", "links"}

func portDoc(p *store.Port, base string) gin.H {
	created := p.CreatedAt
	return gin.H{
		"uuid":                  p.UUID,
		"address":               p.Address,
		"node_uuid":             p.NodeUUID,
		"pxe_enabled":           p.PXEEnabled,
		"local_link_connection": p.LocalLinkConnection,
		"physical_network":      str(p.PhysicalNetwork),
		"extra":                 p.Extra,
		"portgroup_uuid":        nil,
		"is_smartnic":           false,
		"internal_info":         gin.H{},
		"created_at":            timestamp(&created),
		"updated_at":            timestamp(p.UpdatedAt),
		"links":                 resourceLinks(base, "ports", p.UUID),
	}
}
