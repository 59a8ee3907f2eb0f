package publicapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/health"
	"github.com/ferric-metal/ferric/shared/middleware"
)

// maxBody bounds every request body of the operator API.
const maxBody = 1 << 20

// admissionWait is how long a request waits for its turn before 503.
const admissionWait = 5 * time.Second

// Handler returns the operator API.
func (a *API) Handler() http.Handler { return withoutTrailingSlash(toDefaultVersion(a.engine())) }

// engine lists every route of the operator API and its middleware, in
// order.
//
// Path parameters keep one name per position, as gin requires: :node,
// :port, :chassis, :driver, :hostname; below a node, :method, :trait and
// :event.
func (a *API) engine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false // served as without it, below: a redirect would lose the version headers
	_ = r.SetTrustedProxies(nil)    // the socket peer is the client
	r.Use(
		middleware.RequestID(),
		middleware.AccessLog(a.log),
		a.audit, // outside Recover, so a request that panicked is recorded with its 500
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

	// Everything else: authenticated, the body read, then authorised per
	// route.
	v1 := r.Group("/v1", a.authenticate, middleware.ReadBody(maxBody), a.checkNodeIdent)
	reader, member, admin := require(RoleReader), require(RoleMember), require(RoleAdmin)

	// Requests served from the database take their turn (first come, first
	// served; see middleware.Admit).
	db := v1.Group("", middleware.Admit(a.concurrency, admissionWait))
	db.GET("/nodes", reader, a.listNodes)
	db.GET("/nodes/detail", reader, a.listNodesDetail)
	db.POST("/nodes", admin, a.createNode)
	db.GET("/nodes/:node", reader, a.showNode)
	db.PATCH("/nodes/:node", admin, a.updateNode)
	db.DELETE("/nodes/:node", admin, a.deleteNode)
	db.GET("/nodes/:node/validate", reader, a.validateNode)
	db.GET("/nodes/:node/ports", reader, a.listNodePorts)
	db.GET("/nodes/:node/ports/detail", reader, a.listNodePortsDetail)
	db.GET("/nodes/:node/states", reader, a.nodeStates)
	db.PUT("/nodes/:node/maintenance", admin, a.setMaintenance)
	db.DELETE("/nodes/:node/maintenance", admin, a.clearMaintenance)
	db.GET("/nodes/:node/inventory", reader, a.nodeInventory)
	db.GET("/nodes/:node/history", reader, a.nodeHistory)
	db.GET("/nodes/:node/history/:event", reader, a.nodeHistoryEvent)
	db.GET("/nodes/:node/traits", reader, a.listTraits)
	db.PUT("/nodes/:node/traits", admin, a.setTraits)
	db.DELETE("/nodes/:node/traits", admin, a.removeTraits)
	db.PUT("/nodes/:node/traits/:trait", admin, a.addTrait)
	db.DELETE("/nodes/:node/traits/:trait", admin, a.removeTraits)
	db.GET("/nodes/:node/states/console", reader, a.getConsole)
	db.GET("/nodes/states/console/:node", reader, a.getConsole) // the tempest plugin's path; Ironic's routing serves it
	db.PUT("/nodes/:node/states/console", member, a.setConsole)
	db.PUT("/nodes/:node/states/raid", member, a.setRAID)

	// Work the conductor carries out later (see actions.go).
	db.PUT("/nodes/:node/states/power", member, a.setPowerState)
	db.PUT("/nodes/:node/states/provision", member, a.setProvisionState)
	db.GET("/nodes/:node/vendor_passthru/methods", reader, a.nodeVendorMethods)
	db.GET("/drivers/:driver/vendor_passthru/methods", reader, a.driverVendorMethods)

	// Calls to a BMC made while the client waits: bounded by the conductor's
	// pool of synchronous calls (503 at once when it is full), not admitted,
	// so that a slow BMC holds up no other request.
	v1.GET("/nodes/:node/management/boot_device", reader, a.getBootDevice)
	v1.PUT("/nodes/:node/management/boot_device", member, a.setBootDevice)
	v1.GET("/nodes/:node/management/boot_device/supported", reader, a.supportedBootDevices)
	v1.Any("/nodes/:node/vendor_passthru", member, a.nodeVendorPassthru)
	v1.Any("/nodes/:node/vendor_passthru/:method", member, a.nodeVendorPassthru)
	v1.Any("/drivers/:driver/vendor_passthru", member, a.driverVendorPassthru)
	v1.Any("/drivers/:driver/vendor_passthru/:method", member, a.driverVendorPassthru)

	db.GET("/ports", reader, a.listPorts)
	db.GET("/ports/detail", reader, a.listPortsDetail)
	db.POST("/ports", admin, a.createPort)
	db.GET("/ports/:port", reader, a.showPort)
	db.PATCH("/ports/:port", admin, a.updatePort)
	db.DELETE("/ports/:port", admin, a.deletePort)

	db.GET("/chassis", reader, a.listChassis)
	db.GET("/chassis/detail", reader, a.listChassisDetail)
	db.POST("/chassis", admin, a.createChassis)
	db.GET("/chassis/:chassis", reader, a.showChassis)
	db.PATCH("/chassis/:chassis", admin, a.updateChassis)
	db.DELETE("/chassis/:chassis", admin, a.deleteChassis)
	db.GET("/chassis/:chassis/nodes", reader, a.listChassisNodes)
	db.GET("/chassis/:chassis/nodes/detail", reader, a.listChassisNodesDetail)

	db.GET("/drivers", reader, a.listDrivers)
	db.GET("/drivers/:driver", reader, a.showDriver)
	db.GET("/drivers/:driver/properties", reader, a.driverProperties)
	db.GET("/drivers/:driver/raid/logical_disk_properties", reader, a.driverRAIDProperties)

	db.GET("/conductors", reader, a.listConductors)
	db.GET("/conductors/:hostname", reader, a.showConductor)
	return r
}

// toDefaultVersion serves a path that does not start with a version as the
// same path under /v1, as Ironic's root controller does: clients that build
// URLs from an endpoint without /v1 (the tempest plugin, bookmark links)
// reach the resource. The root document and the probes keep their paths.
func toDefaultVersion(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; !unversionedPaths[p] && p != "/v1" && !strings.HasPrefix(p, "/v1/") {
			r.URL.Path = "/v1" + p
			if r.URL.RawPath != "" {
				r.URL.RawPath = "/v1" + r.URL.RawPath
			}
		}
		h.ServeHTTP(w, r)
	})
}

// withoutTrailingSlash serves a path ending in "/" as the path without it,
// as Ironic does (GET /v1/nodes/ lists nodes).
func withoutTrailingSlash(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			r.URL.Path = strings.TrimSuffix(p, "/")
			r.URL.RawPath = strings.TrimSuffix(r.URL.RawPath, "/")
		}
		h.ServeHTTP(w, r)
	})
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
