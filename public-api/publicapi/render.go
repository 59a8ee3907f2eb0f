package publicapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/redact"
)

// renderer renders resources for one request: links use the address the
// client used, fields newer than the client's version are hidden, and lock
// holders are judged at one instant.
type renderer struct {
	base string
	v    Version
	now  time.Time
}

func newRenderer(c *gin.Context) *renderer {
	return &renderer{base: baseURL(c), v: versionOf(c), now: time.Now()}
}

// field is one member of a rendered resource: its name, the first API minor
// version that shows it, and how to compute it.
type field[T any] struct {
	name  string
	minor int
	value func(x *T, r *renderer) any
}

// fieldTable is the ordered list of a resource's fields: the one place that
// says what a resource looks like at each version, which fields= accepts
// and which fields a version may set.
type fieldTable[T any] struct {
	fields []field[T]
	index  map[string]int
}

func newFieldTable[T any](fields ...field[T]) fieldTable[T] {
	t := fieldTable[T]{fields: fields, index: make(map[string]int, len(fields))}
	for i, f := range fields {
		t.index[f.name] = i
	}
	return t
}

// render returns the fields named by keys (all when keys is nil) that the
// renderer's version shows, in the table's order.
func (t fieldTable[T]) render(x *T, r *renderer, keys []string) doc {
	if keys == nil {
		d := make(doc, 0, len(t.fields))
		for _, f := range t.fields {
			if r.v.AtLeast(f.minor) {
				d = append(d, member{f.name, f.value(x, r)})
			}
		}
		return d
	}
	d := make(doc, 0, len(keys))
	for _, k := range keys {
		if i, ok := t.index[k]; ok && r.v.AtLeast(t.fields[i].minor) {
			d = append(d, member{k, t.fields[i].value(x, r)})
		}
	}
	return d
}

// minor returns the version that introduced a field; ok is false for an
// unknown field.
func (t fieldTable[T]) minor(name string) (int, bool) {
	i, ok := t.index[name]
	if !ok {
		return 0, false
	}
	return t.fields[i].minor, true
}

// checkFields refuses unknown field names (400) and fields newer than v
// (406), as Ironic does for fields=.
func (t fieldTable[T]) checkFields(names []string, v Version) error {
	for _, n := range names {
		m, ok := t.minor(n)
		if !ok {
			return fault.New(fault.Invalid, "Field(s) %q are not valid.", n)
		}
		if !v.AtLeast(m) {
			return notAcceptable("Field "+n, m, v)
		}
	}
	return nil
}

// timestamp formats times as Ironic does (ISO 8601 with an offset).
func timestamp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

// Values many documents share, boxed once (boxing a new one allocates).
var (
	emptyObject any = doc{}
	emptyList   any = []string{}
)

func str(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// resourceLinks are a resource's self and bookmark links, written by
// appendJSON straight from their parts (every list item has them).
func resourceLinks(base, kind, id string) selfLinks { return selfLinks{base, kind, id} }

type selfLinks struct{ base, kind, id string }

// MarshalJSON lets links be nested in values encoding/json writes.
func (l selfLinks) MarshalJSON() ([]byte, error) { return appendJSON(nil, l), nil }

// olderStateName renames provision states for old clients, as Ironic does:
// before 1.2 "available" was no state, before 1.39 "inspect wait" was
// reported as "inspecting".
func olderStateName(state *string, v Version) any {
	if state == nil {
		return nil
	}
	switch {
	case *state == conductor.StateAvailable && !v.AtLeast(vAvailableState):
		return nil
	case *state == conductor.StateInspectWait && !v.AtLeast(vInspectWait):
		return conductor.StateInspecting
	}
	return *state
}

type nodeRow = store.Node

// nodeFields is what a node looks like, field by field (Ironic's node
// object at 1.81, less the features Ferric does not have).
var nodeFields = newFieldTable(append([]field[nodeRow]{
	{"uuid", 1, func(n *nodeRow, _ *renderer) any { return n.UUID }},
	{"name", vNames, func(n *nodeRow, _ *renderer) any { return str(n.Name) }},
	{"driver", 1, func(n *nodeRow, _ *renderer) any { return n.Driver }},
	{"driver_info", 1, func(n *nodeRow, _ *renderer) any { return redact.Secrets(n.DriverInfo) }},
	{"driver_internal_info", vDriverInternalInfo, func(n *nodeRow, _ *renderer) any { return redact.Secrets(n.DriverInternalInfo) }},
	{"properties", 1, func(n *nodeRow, _ *renderer) any { return jsonObject(n.Properties) }},
	{"instance_info", 1, func(n *nodeRow, _ *renderer) any { return redact.Secrets(n.InstanceInfo, "image_url") }},
	{"instance_uuid", 1, func(n *nodeRow, _ *renderer) any { return str(n.InstanceUUID) }},
	{"chassis_uuid", 1, func(n *nodeRow, _ *renderer) any { return str(n.ChassisUUID) }},
	{"extra", 1, func(n *nodeRow, _ *renderer) any { return jsonObject(n.Extra) }},
	{"power_state", 1, func(n *nodeRow, _ *renderer) any { return str(n.PowerState) }},
	{"target_power_state", 1, func(n *nodeRow, _ *renderer) any { return str(n.TargetPowerState) }},
	{"provision_state", 1, func(n *nodeRow, r *renderer) any { return olderStateName(&n.ProvisionState, r.v) }},
	{"target_provision_state", 1, func(n *nodeRow, r *renderer) any { return olderStateName(n.TargetProvisionState, r.v) }},
	{"provision_updated_at", 1, func(n *nodeRow, _ *renderer) any { return timestamp(n.ProvisionUpdatedAt) }},
	{"maintenance", 1, func(n *nodeRow, _ *renderer) any { return n.Maintenance }},
	{"maintenance_reason", 1, func(n *nodeRow, _ *renderer) any { return str(n.MaintenanceReason) }},
	{"fault", vFault, func(n *nodeRow, _ *renderer) any { return str(n.Fault) }},
	{"last_error", 1, func(n *nodeRow, _ *renderer) any { return str(n.LastError) }},
	{"reservation", 1, func(n *nodeRow, r *renderer) any {
		if h := n.LockHolder(r.now); h != "" {
			return h
		}
		return nil
	}},
	{"console_enabled", 1, func(n *nodeRow, _ *renderer) any { return n.ConsoleEnabled }},
	{"clean_step", vCleanStep, func(*nodeRow, *renderer) any { return emptyObject }},
	{"raid_config", vRAIDConfig, func(*nodeRow, *renderer) any { return emptyObject }},
	{"target_raid_config", vRAIDConfig, func(n *nodeRow, _ *renderer) any { return jsonObject(n.TargetRAIDConfig) }},
	{"resource_class", vResourceClass, func(n *nodeRow, _ *renderer) any { return str(n.ResourceClass) }},
	{"traits", vTraits, func(n *nodeRow, _ *renderer) any { return traitList(n.Traits) }},
	{"deploy_step", vDeployStep, func(*nodeRow, *renderer) any { return emptyObject }},
	{"conductor_group", vConductorGroup, func(n *nodeRow, _ *renderer) any { return n.ConductorGroup }},
	{"automated_clean", vAutomatedClean, func(n *nodeRow, _ *renderer) any { return optBool(n.AutomatedClean) }},
	{"protected", vProtected, func(n *nodeRow, _ *renderer) any { return n.Protected }},
	{"protected_reason", vProtected, func(n *nodeRow, _ *renderer) any { return str(n.ProtectedReason) }},
	{"conductor", vConductors, func(*nodeRow, *renderer) any { return nil }},
	{"owner", vOwner, func(n *nodeRow, _ *renderer) any { return str(n.Owner) }},
	{"description", vDescription, func(n *nodeRow, _ *renderer) any { return str(n.Description) }},
	{"retired", vRetired, func(n *nodeRow, _ *renderer) any { return n.Retired }},
	{"retired_reason", vRetired, func(n *nodeRow, _ *renderer) any { return str(n.RetiredReason) }},
	{"lessee", vLessee, func(n *nodeRow, _ *renderer) any { return str(n.Lessee) }},
	{"network_data", vNetworkData, func(n *nodeRow, _ *renderer) any { return jsonObject(n.NetworkData) }},
	{"boot_mode", vBootMode, func(*nodeRow, *renderer) any { return nil }},
	{"secure_boot", vBootMode, func(*nodeRow, *renderer) any { return nil }},
	{"created_at", 1, func(n *nodeRow, _ *renderer) any { return timestamp(&n.CreatedAt) }},
	{"updated_at", 1, func(n *nodeRow, _ *renderer) any { return timestamp(n.UpdatedAt) }},
	{"links", 1, func(n *nodeRow, r *renderer) any { return resourceLinks(r.base, "nodes", n.UUID) }},
	{"ports", 1, func(n *nodeRow, r *renderer) any { return resourceLinks(r.base, "nodes", n.UUID+"/ports") }},
	{"states", vStatesLink, func(n *nodeRow, r *renderer) any { return resourceLinks(r.base, "nodes", n.UUID+"/states") }},
}, nodeInterfaceFields()...)...)

// nodeInterfaceMinors are the versions that added each <iface>_interface
// node field (Ironic's; the others came with 1.31).
var nodeInterfaceMinors = map[string]int{
	"network": vNetworkInterface, "storage": vStorageInterface, "rescue": vRescueInterface, "bios": vBIOSInterface,
}

// nodeInterfaceFields are the node's <iface>_interface fields: the
// implementation the node uses (conductor.NodeInterface).
func nodeInterfaceFields() []field[nodeRow] {
	out := make([]field[nodeRow], 0, len(conductor.HardwareInterfaces))
	for _, iface := range conductor.HardwareInterfaces {
		minor, ok := nodeInterfaceMinors[iface]
		if !ok {
			minor = vNodeInterfaces
		}
		out = append(out, field[nodeRow]{iface + "_interface", minor, func(n *nodeRow, _ *renderer) any {
			if s, ok := n.Interfaces[iface].(string); ok {
				return s
			}
			return nil
		}})
	}
	return out
}

func optBool(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

func traitList(traits []string) any {
	if len(traits) == 0 {
		return emptyList
	}
	return traits
}

// nodeSummaryFields are a list item's fields without detail or fields=.
var nodeSummaryFields = []string{"uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance", "links"}

// nodeStateFields are the members of GET /v1/nodes/{node}/states.
var nodeStateFields = []string{
	"power_state", "target_power_state", "provision_state", "target_provision_state",
	"provision_updated_at", "last_error", "console_enabled", "raid_config", "target_raid_config",
	"boot_mode", "secure_boot",
}

func jsonObject(o store.JSONObject) any {
	if len(o) == 0 {
		return emptyObject
	}
	return map[string]any(o)
}

type portRow = store.Port

var portFields = newFieldTable(
	field[portRow]{"uuid", 1, func(p *portRow, _ *renderer) any { return p.UUID }},
	field[portRow]{"address", 1, func(p *portRow, _ *renderer) any { return p.Address }},
	field[portRow]{"node_uuid", 1, func(p *portRow, _ *renderer) any { return p.NodeUUID }},
	field[portRow]{"extra", 1, func(p *portRow, _ *renderer) any { return jsonObject(p.Extra) }},
	field[portRow]{"internal_info", vPortInternalInfo, func(*portRow, *renderer) any { return emptyObject }},
	field[portRow]{"local_link_connection", vPortNetFields, func(p *portRow, _ *renderer) any { return jsonObject(p.LocalLinkConnection) }},
	field[portRow]{"pxe_enabled", vPortNetFields, func(p *portRow, _ *renderer) any { return p.PXEEnabled }},
	field[portRow]{"portgroup_uuid", vPortgroupUUID, func(*portRow, *renderer) any { return nil }},
	field[portRow]{"physical_network", vPhysicalNetwork, func(p *portRow, _ *renderer) any { return str(p.PhysicalNetwork) }},
	field[portRow]{"is_smartnic", vSmartNIC, func(*portRow, *renderer) any { return false }},
	field[portRow]{"created_at", 1, func(p *portRow, _ *renderer) any { return timestamp(&p.CreatedAt) }},
	field[portRow]{"updated_at", 1, func(p *portRow, _ *renderer) any { return timestamp(p.UpdatedAt) }},
	field[portRow]{"links", 1, func(p *portRow, r *renderer) any { return resourceLinks(r.base, "ports", p.UUID) }},
)

var portSummaryFields = []string{"uuid", "address", "links"}

type chassisRow = store.Chassis

var chassisFields = newFieldTable(
	field[chassisRow]{"uuid", 1, func(ch *chassisRow, _ *renderer) any { return ch.UUID }},
	field[chassisRow]{"description", 1, func(ch *chassisRow, _ *renderer) any { return str(ch.Description) }},
	field[chassisRow]{"extra", 1, func(ch *chassisRow, _ *renderer) any { return jsonObject(ch.Extra) }},
	field[chassisRow]{"created_at", 1, func(ch *chassisRow, _ *renderer) any { return timestamp(&ch.CreatedAt) }},
	field[chassisRow]{"updated_at", 1, func(ch *chassisRow, _ *renderer) any { return timestamp(ch.UpdatedAt) }},
	field[chassisRow]{"links", 1, func(ch *chassisRow, r *renderer) any { return resourceLinks(r.base, "chassis", ch.UUID) }},
	field[chassisRow]{"nodes", 1, func(ch *chassisRow, r *renderer) any { return resourceLinks(r.base, "chassis", ch.UUID+"/nodes") }},
)

var chassisSummaryFields = []string{"uuid", "description", "links"}

type conductorRow = store.ConductorInfo

var conductorFields = newFieldTable(
	field[conductorRow]{"hostname", vConductors, func(ci *conductorRow, _ *renderer) any { return ci.Name }},
	field[conductorRow]{"conductor_group", vConductors, func(ci *conductorRow, _ *renderer) any { return ci.ConductorGroup }},
	field[conductorRow]{"alive", vConductors, func(ci *conductorRow, _ *renderer) any { return ci.Alive }},
	field[conductorRow]{"drivers", vConductors, func(ci *conductorRow, _ *renderer) any { return []string(ci.Drivers) }},
	field[conductorRow]{"created_at", vConductors, func(ci *conductorRow, _ *renderer) any { return timestamp(&ci.StartedAt) }},
	field[conductorRow]{"updated_at", vConductors, func(ci *conductorRow, _ *renderer) any { return timestamp(&ci.HeartbeatAt) }},
	field[conductorRow]{"links", vConductors, func(ci *conductorRow, r *renderer) any { return resourceLinks(r.base, "conductors", ci.Name) }},
)

var conductorSummaryFields = []string{"hostname", "conductor_group", "alive", "links"}

type driverRow = conductor.DriverInfo

// driverInterfaces are the hardware interfaces a driver document reports,
// with the versions that added them.
var driverInterfaces = []struct {
	name  string
	minor int
}{
	{"bios", vBIOSInterface}, {"boot", vDynamicDrivers}, {"console", vDynamicDrivers},
	{"deploy", vDynamicDrivers}, {"inspect", vDynamicDrivers}, {"management", vDynamicDrivers},
	{"network", vDynamicDrivers}, {"power", vDynamicDrivers}, {"raid", vDynamicDrivers},
	{"rescue", vRescueInterface}, {"storage", vStorageInterface}, {"vendor", vDynamicDrivers},
}

var driverFields = func() fieldTable[driverRow] {
	fields := []field[driverRow]{
		{"name", 1, func(d *driverRow, _ *renderer) any { return d.Name }},
		{"hosts", 1, func(d *driverRow, _ *renderer) any { return d.Hosts }},
		{"type", vDynamicDrivers, func(*driverRow, *renderer) any { return "dynamic" }},
		{"links", 1, func(d *driverRow, r *renderer) any { return resourceLinks(r.base, "drivers", d.Name) }},
		{"properties", vStatesLink, func(d *driverRow, r *renderer) any {
			return resourceLinks(r.base, "drivers", d.Name+"/properties")
		}},
	}
	for _, iface := range driverInterfaces {
		name := iface.name
		fields = append(fields,
			field[driverRow]{"default_" + name + "_interface", iface.minor, func(d *driverRow, _ *renderer) any {
				if impls := d.Interfaces[name]; len(impls) > 0 {
					return impls[0]
				}
				return nil
			}},
			field[driverRow]{"enabled_" + name + "_interfaces", iface.minor, func(d *driverRow, _ *renderer) any {
				if impls := d.Interfaces[name]; len(impls) > 0 {
					return impls
				}
				return []string{}
			}})
	}
	return newFieldTable(fields...)
}()

var driverSummaryFields = []string{"name", "hosts", "type", "links", "properties"}

// showOne answers GET on one resource: get loads it by the path parameter
// param, and ?fields= selects what is rendered.
func showOne[T any](a *API, c *gin.Context, t fieldTable[T], param string, get func(context.Context, string) (*T, error)) {
	if err := allowQuery(c, []string{"fields"}); err != nil {
		a.fail(c, err)
		return
	}
	fields, err := parseFields(c, t, vFields)
	if err != nil {
		a.fail(c, err)
		return
	}
	x, err := get(c.Request.Context(), c.Param(param))
	if err != nil {
		a.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, t.render(x, newRenderer(c), fields))
}

// created answers a successful POST: 201, the new resource's Location, and
// the resource in full.
func created[T any](c *gin.Context, t fieldTable[T], collection, uuid string, x *T) {
	r := newRenderer(c)
	c.Header("Location", r.base+"/v1/"+collection+"/"+uuid)
	writeJSON(c, http.StatusCreated, t.render(x, r, nil))
}

// renderPage writes one page of a list: each item rendered with keys (nil:
// in full), and the link to the next page after the last item's id.
func renderPage[T any](c *gin.Context, t fieldTable[T], collection string, list []T, keys []string, p page, id func(*T) string, extraLinkKeys ...string) {
	r := newRenderer(c)
	items := make([]doc, len(list))
	for i := range list {
		items[i] = t.render(&list[i], r, keys)
	}
	last := ""
	if len(list) > 0 {
		last = id(&list[len(list)-1])
	}
	renderList(c, collection, items, nextURL(c, len(list), p, last), extraLinkKeys...)
}

// deleteOne answers DELETE on one resource: 204 once del has removed it.
func deleteOne(a *API, c *gin.Context, param string, del func(context.Context, string) error) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	if err := del(c.Request.Context(), c.Param(param)); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// patchOne answers PATCH on one resource (query: the parameters it takes):
// the JSON Patch is decoded,
// checked against the fields the client's version knows (and by check, when
// given), applied by update, and the result rendered in full.
func patchOne[T any](a *API, c *gin.Context, t fieldTable[T], param string, query []string, check func([]conductor.PatchOp, Version) error,
	update func(context.Context, string, []conductor.PatchOp) (*T, error)) {
	if err := allowQuery(c, query); err != nil {
		a.fail(c, err)
		return
	}
	ops, err := decodePatch(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	v := versionOf(c)
	if err := checkPatchVersion(t, ops, v); err != nil {
		a.fail(c, err)
		return
	}
	if check != nil {
		if err := check(ops, v); err != nil {
			a.fail(c, err)
			return
		}
	}
	x, err := update(c.Request.Context(), c.Param(param), ops)
	if err != nil {
		a.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, t.render(x, newRenderer(c), nil))
}

// listRequest reads what every list shares: the allowed query parameters
// (paging plus filters), detail or fields, and the page.
func listRequest[T any](c *gin.Context, t fieldTable[T], detailPath bool, filters []string) (detail bool, fields []string, p page, err error) {
	if err = allowQuery(c, pagingParams, filters); err != nil {
		return false, nil, p, err
	}
	if detail, fields, err = listShape(c, t, detailPath, vDetail, vFields); err != nil {
		return false, nil, p, err
	}
	p, err = parsePage(c)
	return detail, fields, p, err
}
