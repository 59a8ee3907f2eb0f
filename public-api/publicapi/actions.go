package publicapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/middleware"
)

// Actions on nodes that the conductor carries out: power, provisioning,
// boot device and vendor passthru.

// softPowerMinor is the version that added soft power actions and timeouts.
const softPowerMinor = 27

// powerRequest is the body of PUT /v1/nodes/{node}/states/power.
type powerRequest struct {
	Target  string `json:"target"`
	Timeout *int   `json:"timeout"`
}

// setPowerState handles PUT /v1/nodes/{node}/states/power: 202 once the
// target power state is committed and the action queued.
func (a *API) setPowerState(c *gin.Context) {
	var req powerRequest
	if err := decodeBody(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	soft := req.Target == string(drivers.ActionSoftPowerOff) || req.Target == string(drivers.ActionSoftReboot)
	if (soft || req.Timeout != nil) && !versionOf(c).AtLeast(softPowerMinor) {
		a.fail(c, fault.New(fault.NotAcceptable, "Soft power actions and timeouts need API version 1.%d or later.", softPowerMinor))
		return
	}
	var timeout time.Duration
	if req.Timeout != nil {
		if *req.Timeout < 1 || *req.Timeout > maxPowerTimeout {
			a.fail(c, fault.New(fault.Invalid, "Invalid timeout %d: it must be a number of seconds from 1 to %d.", *req.Timeout, maxPowerTimeout))
			return
		}
		timeout = time.Duration(*req.Timeout) * time.Second
	}
	node, err := a.conductor.ChangePowerState(c.Request.Context(), c.Param("node"), conductor.PowerRequest{
		Target: req.Target, Timeout: timeout, User: c.GetString(subjectKey),
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", baseURL(c)+"/v1/nodes/"+node.UUID+"/states")
	c.Status(http.StatusAccepted)
}

// maxPowerTimeout bounds a soft power action's timeout (seconds): a day
// is already more than any machine takes to shut down.
const maxPowerTimeout = 86400

// verbMinors are the versions that introduced each provision verb.
var verbMinors = map[string]int{
	"manage": 4, "provide": 4, "inspect": 6, "abort": 13, "clean": 15,
	"deploy": 73, "undeploy": 73, "active": 1, "deleted": 1, "rebuild": 1,
}

// provisionRequest is the body of PUT /v1/nodes/{node}/states/provision.
type provisionRequest struct {
	Target      string `json:"target"`
	CleanSteps  []any  `json:"clean_steps"`
	ConfigDrive any    `json:"configdrive"`
}

// setProvisionState handles PUT /v1/nodes/{node}/states/provision: 202 once
// the first transition and target_provision_state are committed.
func (a *API) setProvisionState(c *gin.Context) {
	var req provisionRequest
	if err := decodeBody(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if minor, ok := verbMinors[req.Target]; ok && !versionOf(c).AtLeast(minor) {
		a.fail(c, fault.New(fault.NotAcceptable, "The provision target %q needs API version 1.%d or later.", req.Target, minor))
		return
	}
	node, err := a.conductor.ChangeProvisionState(c.Request.Context(), c.Param("node"), conductor.ProvisionRequest{
		Target: req.Target, CleanSteps: req.CleanSteps, ConfigDrive: req.ConfigDrive, User: c.GetString(subjectKey),
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Header("Location", baseURL(c)+"/v1/nodes/"+node.UUID+"/states")
	c.Status(http.StatusAccepted)
}

// getBootDevice handles GET /v1/nodes/{node}/management/boot_device.
func (a *API) getBootDevice(c *gin.Context) {
	st, err := a.conductor.GetBootDevice(c.Request.Context(), c.Param("node"))
	if err != nil {
		a.fail(c, err)
		return
	}
	var dev any
	if st.Device != "" {
		dev = st.Device
	}
	c.JSON(http.StatusOK, gin.H{"boot_device": dev, "persistent": st.Persistent})
}

// supportedBootDevices handles GET .../management/boot_device/supported.
func (a *API) supportedBootDevices(c *gin.Context) {
	devs, err := a.conductor.SupportedBootDevices(c.Request.Context(), c.Param("node"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"supported_boot_devices": devs})
}

// bootDeviceRequest is the body of PUT .../management/boot_device.
type bootDeviceRequest struct {
	BootDevice string `json:"boot_device"`
	Persistent bool   `json:"persistent"`
}

// setBootDevice handles PUT /v1/nodes/{node}/management/boot_device: 204,
// synchronously, as Ironic.
func (a *API) setBootDevice(c *gin.Context) {
	var req bootDeviceRequest
	if err := decodeBody(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	if req.BootDevice == "" {
		a.fail(c, fault.New(fault.Invalid, "Mandatory field missing: boot_device."))
		return
	}
	if err := a.conductor.SetBootDevice(c.Request.Context(), c.Param("node"), drivers.BootDevice(req.BootDevice), req.Persistent); err != nil {
		a.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// methodsDoc renders vendor methods as Ironic lists them.
func methodsDoc(methods []drivers.VendorMethod, withLock bool) gin.H {
	doc := gin.H{}
	for _, m := range methods {
		d := gin.H{"http_methods": m.HTTPMethods, "async": m.Async, "attach": m.Attach, "description": m.Description}
		if withLock {
			d["require_exclusive_lock"] = m.RequireExclusiveLock
		}
		doc[m.Name] = d
	}
	return doc
}

// nodeVendorMethods handles GET /v1/nodes/{node}/vendor_passthru/methods.
func (a *API) nodeVendorMethods(c *gin.Context) {
	methods, err := a.conductor.NodeVendorMethods(c.Request.Context(), c.Param("node"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, methodsDoc(methods, true))
}

// driverVendorMethods handles GET /v1/drivers/{driver}/vendor_passthru/methods.
func (a *API) driverVendorMethods(c *gin.Context) {
	methods, err := a.conductor.DriverVendorMethods(c.Param("driver"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, methodsDoc(methods, false))
}

// passthruBody reads the request body, which goes to the driver unexamined
// beyond its size (middleware.ReadBody) and JSON validity.
func passthruBody(c *gin.Context) (json.RawMessage, error) {
	body := middleware.Body(c)
	if len(body) > 0 && !json.Valid(body) {
		return nil, fault.New(fault.Invalid, "The vendor passthru body is not valid JSON.")
	}
	return body, nil
}

// passthruMethod reads the method from the path (/vendor_passthru/{method},
// the baremetal CLI's form) or from ?method= (the API reference's form).
func passthruMethod(c *gin.Context) string {
	if m := c.Param("method"); m != "" {
		return m
	}
	return c.Query("method")
}

// nodeVendorPassthru handles any verb on /v1/nodes/{node}/vendor_passthru
// (?method=) and /v1/nodes/{node}/vendor_passthru/{method}: 202 with no
// body for asynchronous methods, 200 with the driver's JSON otherwise.
func (a *API) nodeVendorPassthru(c *gin.Context) {
	body, err := passthruBody(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	res, err := a.conductor.NodeVendorPassthru(c.Request.Context(), c.Param("node"), passthruMethod(c), c.Request.Method, body, c.GetString(subjectKey))
	if err != nil {
		a.fail(c, err)
		return
	}
	if res.Async {
		c.Status(http.StatusAccepted)
		return
	}
	c.JSON(http.StatusOK, res.Result)
}

// driverVendorPassthru handles any verb on /v1/drivers/{driver}/vendor_passthru
// (?method=) and .../vendor_passthru/{method}: synchronous, 200.
func (a *API) driverVendorPassthru(c *gin.Context) {
	body, err := passthruBody(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	res, err := a.conductor.DriverVendorPassthru(c.Request.Context(), c.Param("driver"), passthruMethod(c), c.Request.Method, body)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// nodeInventory handles GET /v1/nodes/{node}/inventory: the hardware
// inventory the node's agent last reported (API 1.81).
func (a *API) nodeInventory(c *gin.Context) {
	if !versionOf(c).AtLeast(81) {
		a.fail(c, fault.New(fault.NotFound, "The resource could not be found."))
		return
	}
	inv, err := a.conductor.NodeInventory(c.Request.Context(), c.Param("node"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, inv)
}
