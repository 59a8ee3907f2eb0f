package publicapi

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/health"
	"github.com/ferric-metal/ferric/shared/middleware"
)

// maxBody bounds every request body of the operator API.
const maxBody = 1 << 20

// Handler returns the operator API: every route and its middleware, in order.
//
// Path parameters keep one name per position, as gin requires: :node,
// :port, :chassis, :driver, :hostname.
func (a *API) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	_ = r.SetTrustedProxies(nil) // the socket peer is the client
	r.Use(
		middleware.RequestID(),
		middleware.AccessLog(a.log),
		middleware.Recover(a.log),
		negotiateVersion,
		checkURL,
	)
	r.NoRoute(func(c *gin.Context) {
		apierror.Write(c.Writer, http.StatusNotFound, "The resource could not be found.")
	})
	r.NoMethod(func(c *gin.Context) {
		apierror.Write(c.Writer, http.StatusMethodNotAllowed, "The method is not allowed for this resource.")
	})

	// Probes and discovery documents: no authentication, as in Ironic.
	r.GET("/healthz", health.Live)
	r.GET("/readyz", health.Ready(a.db))
	r.GET("/", a.root)
	r.GET("/v1", a.v1Root)
	r.GET("/v1/", a.v1Root)

	// Everything else: audited (mutations, refusals included), then
	// authenticated, then authorised per route.
	v1 := r.Group("/v1", a.audit, a.authenticate, middleware.LimitBody(maxBody), a.checkNodeIdent)
	reader, admin := require(RoleReader), require(RoleAdmin)

	v1.GET("/nodes", reader, a.listNodes)
	v1.GET("/nodes/detail", reader, a.listNodesDetail)
	v1.POST("/nodes", admin, a.createNode)
	v1.GET("/nodes/:node", reader, a.showNode)
	v1.PATCH("/nodes/:node", admin, a.updateNode)
	v1.DELETE("/nodes/:node", admin, a.deleteNode)
	v1.GET("/nodes/:node/validate", reader, a.validateNode)
	v1.GET("/nodes/:node/ports", reader, a.listNodePorts)
	v1.GET("/nodes/:node/ports/detail", reader, a.listNodePortsDetail)
	v1.GET("/nodes/:node/states", reader, a.nodeStates)
	v1.PUT("/nodes/:node/maintenance", admin, a.setMaintenance)
	v1.DELETE("/nodes/:node/maintenance", admin, a.clearMaintenance)

	// Work the conductor carries out (see actions.go).
	member := require(RoleMember)
	v1.GET("/nodes/:node/inventory", reader, a.nodeInventory)
	v1.PUT("/nodes/:node/states/power", member, a.setPowerState)
	v1.PUT("/nodes/:node/states/provision", member, a.setProvisionState)
	v1.GET("/nodes/:node/management/boot_device", reader, a.getBootDevice)
	v1.PUT("/nodes/:node/management/boot_device", member, a.setBootDevice)
	v1.GET("/nodes/:node/management/boot_device/supported", reader, a.supportedBootDevices)
	v1.GET("/nodes/:node/vendor_passthru/methods", reader, a.nodeVendorMethods)
	v1.Any("/nodes/:node/vendor_passthru", member, a.nodeVendorPassthru)
	v1.Any("/nodes/:node/vendor_passthru/:method", member, a.nodeVendorPassthru)
	v1.GET("/drivers/:driver/vendor_passthru/methods", reader, a.driverVendorMethods)
	v1.Any("/drivers/:driver/vendor_passthru", member, a.driverVendorPassthru)
	v1.Any("/drivers/:driver/vendor_passthru/:method", member, a.driverVendorPassthru)

	v1.GET("/ports", reader, a.listPorts)
	v1.GET("/ports/detail", reader, a.listPortsDetail)
	v1.POST("/ports", admin, a.createPort)
	v1.GET("/ports/:port", reader, a.showPort)
	v1.PATCH("/ports/:port", admin, a.updatePort)
	v1.DELETE("/ports/:port", admin, a.deletePort)

	v1.GET("/chassis", reader, a.listChassis)
	v1.GET("/chassis/detail", reader, a.listChassisDetail)
	v1.POST("/chassis", admin, a.createChassis)
	v1.GET("/chassis/:chassis", reader, a.showChassis)
	v1.PATCH("/chassis/:chassis", admin, a.updateChassis)
	v1.DELETE("/chassis/:chassis", admin, a.deleteChassis)
	v1.GET("/chassis/:chassis/nodes", reader, a.listChassisNodes)
	v1.GET("/chassis/:chassis/nodes/detail", reader, a.listChassisNodesDetail)

	v1.GET("/drivers", reader, a.listDrivers)
	v1.GET("/drivers/:driver", reader, a.showDriver)
	v1.GET("/drivers/:driver/properties", reader, a.driverProperties)

	v1.GET("/conductors", reader, a.listConductors)
	v1.GET("/conductors/:hostname", reader, a.showConductor)
	return r
}

// checkURL refuses paths and query strings that are malformed or carry
// text no resource can hold (NUL, invalid UTF-8), before they reach a
// handler or the database.
func checkURL(c *gin.Context) {
	bad := !utf8.ValidString(c.Request.URL.Path) || strings.ContainsRune(c.Request.URL.Path, 0)
	values, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		bad = true
	}
	for k, vs := range values {
		bad = bad || !utf8.ValidString(k) || strings.ContainsRune(k, 0)
		for _, v := range vs {
			bad = bad || !utf8.ValidString(v) || strings.ContainsRune(v, 0)
		}
	}
	if bad {
		apierror.Write(c.Writer, http.StatusBadRequest, "The URL is malformed or contains a NUL character or invalid UTF-8.")
		c.Abort()
		return
	}
	c.Next()
}
