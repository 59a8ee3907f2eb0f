package agentapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/health"
	"github.com/ferric-metal/ferric/shared/middleware"
)

// maxBody bounds request bodies on the agent listener.
const maxBody = 64 << 10

// Handler returns the agent API: every route and its middleware, in order.
// Nothing else is reachable: unknown paths are 404, other verbs 405.
func (a *API) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false // exact paths only, for the VLAN's ACL
	_ = r.SetTrustedProxies(nil)
	r.Use(
		middleware.RequestID(),
		middleware.AccessLog(a.log),
		middleware.Recover(a.log),
		middleware.LimitBody(maxBody),
	)
	r.NoRoute(func(c *gin.Context) {
		apierror.Write(c.Writer, http.StatusNotFound, "The resource could not be found.")
	})
	r.NoMethod(func(c *gin.Context) {
		apierror.Write(c.Writer, http.StatusMethodNotAllowed, "The method is not allowed for this resource.")
	})

	r.GET("/healthz", health.Live)
	r.GET("/readyz", health.Ready(a.db))
	r.GET("/", a.root)               // IPA version discovery
	r.GET("/v1/lookup", a.lookupIPA) // IPA lookup by MAC addresses
	return r
}
