package publicapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/jsonbody"
	"github.com/ferric-metal/ferric/shared/middleware"
)

// checkNodeIdent vets the {node} of a route before its handler: a UUID, or
// from API 1.5 on a name. Older clients naming a node by name get 404,
// Ironic's answer then; a malformed name is 400.
func (a *API) checkNodeIdent(c *gin.Context) {
	ident := c.Param("node")
	if ident == "" || conductor.IsUUID(ident) {
		c.Next()
		return
	}
	switch v := versionOf(c); {
	case !v.AtLeast(vNames):
		a.fail(c, fault.New(fault.NotFound, "Node %s could not be found.", ident))
	case !conductor.ValidNodeIdent(ident):
		a.fail(c, fault.New(fault.Invalid, "Expected a logical name or UUID but received %q.", ident))
	default:
		c.Next()
	}
}

// createNodeRequest is the body of POST /v1/nodes: the fields of Ironic's
// node schema at 1.81 that Ferric has. Unknown fields are refused.
type createNodeRequest struct {
	UUID           string         `json:"uuid"`
	Name           *string        `json:"name"`
	Driver         string         `json:"driver"`
	DriverInfo     map[string]any `json:"driver_info"`
	Properties     map[string]any `json:"properties"`
	InstanceInfo   map[string]any `json:"instance_info"`
	InstanceUUID   *string        `json:"instance_uuid"`
	Extra          map[string]any `json:"extra"`
	ChassisUUID    *string        `json:"chassis_uuid"`
	ResourceClass  *string        `json:"resource_class"`
	ConductorGroup *string        `json:"conductor_group"`
	Owner          *string        `json:"owner"`
	Lessee         *string        `json:"lessee"`
	Description    *string        `json:"description"`
	AutomatedClean *looseBool     `json:"automated_clean"`
	Retired        *looseBool     `json:"retired"`
	RetiredReason  *string        `json:"retired_reason"`
	NetworkData    map[string]any `json:"network_data"`
	ConsoleEnabled *looseBool     `json:"console_enabled"`

	BIOSInterface       *string `json:"bios_interface"`
	BootInterface       *string `json:"boot_interface"`
	ConsoleInterface    *string `json:"console_interface"`
	DeployInterface     *string `json:"deploy_interface"`
	InspectInterface    *string `json:"inspect_interface"`
	ManagementInterface *string `json:"management_interface"`
	NetworkInterface    *string `json:"network_interface"`
	PowerInterface      *string `json:"power_interface"`
	RAIDInterface       *string `json:"raid_interface"`
	RescueInterface     *string `json:"rescue_interface"`
	StorageInterface    *string `json:"storage_interface"`
	VendorInterface     *string `json:"vendor_interface"`
}

// interfaces maps each hardware interface to the implementation asked for.
func (r *createNodeRequest) interfaces() map[string]*string {
	return map[string]*string{
		"bios": r.BIOSInterface, "boot": r.BootInterface, "console": r.ConsoleInterface,
		"deploy": r.DeployInterface, "inspect": r.InspectInterface, "management": r.ManagementInterface,
		"network": r.NetworkInterface, "power": r.PowerInterface, "raid": r.RAIDInterface,
		"rescue": r.RescueInterface, "storage": r.StorageInterface, "vendor": r.VendorInterface,
	}
}

// checkVersion refuses fields newer than the request's version (406), as
// Ironic does for those given a value.
func (r *createNodeRequest) checkVersion(v Version) error {
	set := map[string]bool{
		"name": r.Name != nil, "resource_class": r.ResourceClass != nil,
		"conductor_group": r.ConductorGroup != nil && *r.ConductorGroup != "", "owner": r.Owner != nil,
		"lessee": r.Lessee != nil, "description": r.Description != nil,
		"automated_clean": r.AutomatedClean != nil, "retired": r.Retired != nil,
		"retired_reason": r.RetiredReason != nil, "network_data": r.NetworkData != nil,
	}
	for iface, impl := range r.interfaces() {
		set[iface+"_interface"] = impl != nil
	}
	for name, isSet := range set {
		if m, _ := nodeFields.minor(name); isSet && !v.AtLeast(m) {
			return notAcceptable("Field "+name, m, v)
		}
	}
	return nil
}

// looseBool is a boolean field that also takes the strings Ironic takes
// for one ("true", "False", "yes", ...).
type looseBool bool

func (b *looseBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	parsed, ok := conductor.LooseBool(v)
	if !ok { // reported as a boolean field given something else
		return &json.UnmarshalTypeError{Value: string(data), Type: reflect.TypeFor[bool]()}
	}
	*b = looseBool(parsed)
	return nil
}

func (b *looseBool) ptr() *bool {
	if b == nil {
		return nil
	}
	v := bool(*b)
	return &v
}

// createNode handles POST /v1/nodes.
func (a *API) createNode(c *gin.Context) {
	var req createNodeRequest
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	if err := decodeBody(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	v := versionOf(c)
	if err := req.checkVersion(v); err != nil {
		a.fail(c, err)
		return
	}
	initial := conductor.StateEnroll
	if !v.AtLeast(vEnrollDefault) {
		initial = conductor.StateAvailable // before 1.11 nodes started available
	}
	group := ""
	if req.ConductorGroup != nil {
		group = *req.ConductorGroup
	}
	n, err := a.conductor.CreateNode(c.Request.Context(), conductor.NodeSpec{
		UUID: req.UUID, Name: req.Name, Driver: req.Driver, DriverInfo: req.DriverInfo,
		Properties: req.Properties, InstanceInfo: req.InstanceInfo, InstanceUUID: req.InstanceUUID,
		Extra: req.Extra, ChassisUUID: req.ChassisUUID, ResourceClass: req.ResourceClass,
		ConductorGroup: group, Owner: req.Owner, Lessee: req.Lessee, Description: req.Description,
		Interfaces: req.interfaces(), AutomatedClean: req.AutomatedClean.ptr(), Retired: req.Retired.ptr(),
		RetiredReason: req.RetiredReason, NetworkData: req.NetworkData, ConsoleEnabled: req.ConsoleEnabled.ptr(),
		InitialState: initial,
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	created(c, nodeFields, "nodes", n.UUID, n)
}

// showNode handles GET /v1/nodes/{node}.
func (a *API) showNode(c *gin.Context) {
	showOne(a, c, nodeFields, "node", a.conductor.GetNode)
}

// nodeFilters are the filters of node lists and the versions that added them.
var nodeFilters = []struct {
	name  string
	minor int
}{
	{"maintenance", 1}, {"associated", 1}, {"instance_uuid", 1}, {"chassis_uuid", 1},
	{"provision_state", vProvisionStateFilter}, {"driver", vDriverFilter},
	{"resource_class", vResourceClass}, {"fault", vFault}, {"conductor_group", vConductorGroup},
	{"owner", vOwner}, {"description_contains", vDescription}, {"lessee", vLessee},
}

var nodeFilterNames = func() []string {
	var names []string
	for _, f := range nodeFilters {
		names = append(names, f.name)
	}
	return names
}()

// listNodes handles GET /v1/nodes.
func (a *API) listNodes(c *gin.Context) { a.renderNodes(c, false, "") }

// listNodesDetail handles GET /v1/nodes/detail.
func (a *API) listNodesDetail(c *gin.Context) { a.renderNodes(c, true, "") }

// listChassisNodes handles GET /v1/chassis/{chassis}/nodes.
func (a *API) listChassisNodes(c *gin.Context) { a.renderNodes(c, false, c.Param("chassis")) }

// listChassisNodesDetail handles GET /v1/chassis/{chassis}/nodes/detail.
func (a *API) listChassisNodesDetail(c *gin.Context) { a.renderNodes(c, true, c.Param("chassis")) }

// renderNodes lists nodes, in a chassis when chassisID is set.
func (a *API) renderNodes(c *gin.Context, detailPath bool, chassisID string) {
	q, p, err := nodeQuery(c, chassisID != "")
	if err != nil {
		a.fail(c, err)
		return
	}
	detail, fields, err := listShape(c, nodeFields, detailPath, vDetail, vFields)
	if err != nil {
		a.fail(c, err)
		return
	}
	keys := listKeys(detail, fields, nodeSummaryFields, "uuid")
	q.Shape = nodeShape(keys)
	var nodes []store.Node
	if chassisID != "" {
		nodes, err = a.conductor.ListChassisNodes(c.Request.Context(), chassisID, q)
	} else {
		nodes, err = a.conductor.ListNodes(c.Request.Context(), q)
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	renderPage(c, nodeFields, "nodes", nodes, keys, p, func(n *nodeRow) string { return n.UUID })
}

// nodeShape is the least a list must read from the database to render
// keys (nil: every field).
func nodeShape(keys []string) store.NodeShape {
	if keys == nil {
		return store.NodeFull
	}
	shape := store.NodeSummary
	for _, k := range keys {
		switch k {
		case "uuid", "name", "instance_uuid", "power_state", "provision_state", "maintenance",
			"links", "ports", "states":
		case "driver_info", "driver_internal_info", "properties", "instance_info", "extra",
			"network_data", "target_raid_config", "traits":
			return store.NodeFull
		default:
			if strings.HasSuffix(k, "_interface") {
				return store.NodeFull
			}
			shape = store.NodeNoJSON
		}
	}
	return shape
}

// nodeQuery reads a node list's paging and filters, refusing filters newer
// than the request's version (406) and unknown parameters (400).
func nodeQuery(c *gin.Context, inChassis bool) (store.NodeQuery, page, error) {
	filters := nodeFilterNames
	if inChassis {
		filters = filters[:0:0]
		for _, f := range nodeFilterNames {
			if f != "chassis_uuid" {
				filters = append(filters, f)
			}
		}
	}
	if err := allowQuery(c, pagingParams, filters); err != nil {
		return store.NodeQuery{}, page{}, err
	}
	v := versionOf(c)
	for _, f := range nodeFilters {
		if _, set := c.GetQuery(f.name); set && !v.AtLeast(f.minor) {
			return store.NodeQuery{}, page{}, notAcceptable("The "+f.name+" filter", f.minor, v)
		}
	}
	p, err := parsePage(c)
	if err != nil {
		return store.NodeQuery{}, p, err
	}
	if err := checkSortKey(nodeFields, p.sortKey, v); err != nil {
		return store.NodeQuery{}, p, err
	}
	q := store.NodeQuery{
		Limit: p.limit, MarkerUUID: p.marker, SortKey: p.sortKey, SortDesc: p.desc,
		ProvisionState:      c.Query("provision_state"),
		Driver:              c.Query("driver"),
		ResourceClass:       c.Query("resource_class"),
		ConductorGroup:      c.Query("conductor_group"),
		Fault:               c.Query("fault"),
		Owner:               c.Query("owner"),
		Lessee:              c.Query("lessee"),
		InstanceUUID:        c.Query("instance_uuid"),
		ChassisUUID:         c.Query("chassis_uuid"),
		DescriptionContains: c.Query("description_contains"),
	}
	if q.Maintenance, err = parseBoolQuery(c, "maintenance"); err != nil {
		return q, p, err
	}
	if q.Associated, err = parseBoolQuery(c, "associated"); err != nil {
		return q, p, err
	}
	return q, p, nil
}

// patchRequest is one operation of a JSON Patch body. From is decoded only
// so that move and copy are refused by name rather than as unknown fields.
type patchRequest struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
	From  *string         `json:"from"`
}

// decodePatch reads a JSON Patch body (a list of operations).
func decodePatch(c *gin.Context) ([]conductor.PatchOp, error) {
	var req []patchRequest
	if err := decodeBody(c, &req); err != nil {
		return nil, err
	}
	ops := make([]conductor.PatchOp, len(req))
	for i, r := range req {
		ops[i] = conductor.PatchOp{Op: r.Op, Path: r.Path, Value: r.Value}
	}
	return ops, nil
}

// checkPatchVersion refuses patches of fields newer than the request's
// version (406).
func checkPatchVersion[T any](t fieldTable[T], ops []conductor.PatchOp, v Version) error {
	for _, op := range ops {
		if m, ok := t.minor(conductor.PatchRoot(op)); ok && !v.AtLeast(m) {
			return notAcceptable("Patching "+conductor.PatchRoot(op), m, v)
		}
	}
	return nil
}

// updateNode handles PATCH /v1/nodes/{node}[?reset_interfaces=true].
func (a *API) updateNode(c *gin.Context) {
	var opts conductor.NodeUpdate
	if raw, ok := c.GetQuery("reset_interfaces"); ok {
		if v := versionOf(c); !v.AtLeast(vResetInterfaces) {
			a.fail(c, notAcceptable("The reset_interfaces parameter", vResetInterfaces, v))
			return
		}
		reset, valid := conductor.LooseBool(raw)
		if !valid {
			a.fail(c, fault.New(fault.Invalid, "Invalid value for reset_interfaces: %q is not a boolean.", raw))
			return
		}
		opts.ResetInterfaces = reset
	}
	opts.User = c.GetString(subjectKey)
	patchOne(a, c, nodeFields, "node", []string{"reset_interfaces"}, checkChassisRemoval,
		func(ctx context.Context, ident string, ops []conductor.PatchOp) (*store.Node, error) {
			return a.conductor.UpdateNode(ctx, ident, ops, opts)
		})
}

// checkChassisRemoval refuses removing chassis_uuid before the version
// that allowed it.
func checkChassisRemoval(ops []conductor.PatchOp, v Version) error {
	for _, op := range ops {
		if op.Op == "remove" && op.Path == "/chassis_uuid" && !v.AtLeast(vUnsetChassis) {
			return notAcceptable("Removing chassis_uuid", vUnsetChassis, v)
		}
	}
	return nil
}

// deleteNode handles DELETE /v1/nodes/{node}.
func (a *API) deleteNode(c *gin.Context) {
	deleteOne(a, c, "node", a.conductor.DeleteNode)
}

// nodeStates handles GET /v1/nodes/{node}/states.
func (a *API) nodeStates(c *gin.Context) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	n, err := a.conductor.GetNode(c.Request.Context(), c.Param("node"))
	if err != nil {
		a.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, nodeFields.render(n, newRenderer(c), nodeStateFields))
}

// validateNode handles GET /v1/nodes/{node}/validate.
func (a *API) validateNode(c *gin.Context) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	checks, err := a.conductor.ValidateNode(c.Request.Context(), c.Param("node"))
	if err != nil {
		a.fail(c, err)
		return
	}
	out := make(gin.H, len(checks))
	for iface, check := range checks {
		var result, reason any
		if check.Result != nil {
			result = *check.Result
		}
		if check.Reason != nil {
			reason = *check.Reason
		}
		out[iface] = gin.H{"result": result, "reason": reason}
	}
	c.JSON(http.StatusOK, out)
}

// maintenanceRequest is the optional body of PUT .../maintenance.
type maintenanceRequest struct {
	Reason *string `json:"reason"`
}

// setMaintenance handles PUT /v1/nodes/{node}/maintenance: 202, no body.
func (a *API) setMaintenance(c *gin.Context) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	var req maintenanceRequest
	if err := decodeOptionalBody(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if err := a.conductor.SetMaintenance(c.Request.Context(), c.Param("node"), req.Reason, c.GetString(subjectKey)); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusAccepted)
}

// clearMaintenance handles DELETE /v1/nodes/{node}/maintenance: 202, no body.
func (a *API) clearMaintenance(c *gin.Context) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	if err := a.conductor.ClearMaintenance(c.Request.Context(), c.Param("node"), c.GetString(subjectKey)); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusAccepted)
}

// decodeBody decodes the request body (read, within its cap, by
// middleware.ReadBody) strictly into v.
func decodeBody(c *gin.Context, v any) error { return jsonbody.DecodeBytes(middleware.Body(c), v) }

// decodeOptionalBody decodes a body that clients may leave empty.
func decodeOptionalBody(c *gin.Context, v any) error {
	if len(bytes.TrimSpace(middleware.Body(c))) == 0 {
		return nil
	}
	return decodeBody(c, v)
}
