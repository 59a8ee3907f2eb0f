package publicapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/health"
	"github.com/ferric-metal/ferric/shared/middleware"
)

// maxBody bounds every request body of the operator API.
const maxBody = 1 << 20

// Handler returns the operator API: every route and its middleware, in order.
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

	v1 := r.Group("/v1", a.authenticate, middleware.LimitBody(maxBody))
	reader, admin := require(RoleReader), require(RoleAdmin)

	v1.GET("/nodes", reader, a.listNodes)
	v1.GET("/nodes/detail", reader, a.listNodesDetail)
	v1.POST("/nodes", admin, a.createNode)
	v1.GET("/nodes/:node", reader, a.showNode)
	v1.DELETE("/nodes/:node", admin, a.deleteNode)

	v1.GET("/ports", reader, a.listPorts)
	v1.GET("/ports/detail", reader, a.listPortsDetail)
	v1.POST("/ports", admin, a.createPort)
	v1.GET("/ports/:port", reader, a.showPort)
	return r
}
