package agentapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/health"
	"github.com/ferric-metal/ferric/shared/middleware"
)

// Body caps: an inventory may be large (many disks, IPA's extra inspection
// data); everything else an agent sends is small.
const (
	maxInventoryBody = 1 << 20
	maxCheckinBody   = 64 << 10
)

// Handler returns the agent API: every route and its middleware, in order.
// Nothing else is reachable: unknown paths are 404, other verbs 405.
func (a *API) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false // exact paths only, for the VLAN's ACL
	r.RedirectFixedPath = false
	r.RemoteIPHeaders = []string{"X-Forwarded-For"}
	_ = r.SetTrustedProxies(a.opts.TrustedProxies) // checked by New
	r.Use(
		middleware.RequestID(),
		middleware.AccessLog(a.log),
		middleware.Recover(a.log),
	)

	// For the load balancer: no guards, nothing an agent could abuse.
	r.GET("/healthz", health.Live)

	// Everything else, unknown paths included, passes the guards first.
	guards := []gin.HandlerFunc{
		source(),                            // the client address (X-Forwarded-For from trusted proxies only)
		allowSources(a.opts.AllowedSources), // 403 outside the provisioning networks
		a.rateLimit(),                       // 429 + Retry-After beyond the source's bucket
	}
	guarded := r.Group("", guards...)
	// Then each route reads its whole body, within its cap (413 beyond),
	// before taking one of the in-flight slots: a host sending slowly holds
	// none. The bodies being read at once are bounded apart (bodyReaders):
	// inventories (1 MiB) as many as the in-flight slots, small bodies (64
	// KiB) four times as many, and a source only a share of those
	// (Options.BodiesPerSource).
	inFlight := []gin.HandlerFunc{
		limitInFlight(a.opts.MaxInFlight), // 503 at once when busy
		deadline(a.opts.RequestTimeout),   // bounds the database work
	}
	perSource := func(share int) int {
		if a.opts.BodiesPerSource > 0 {
			return a.opts.BodiesPerSource
		}
		return max(1, a.opts.MaxInFlight/share)
	}
	readers := map[int64]*bodyReaders{
		maxInventoryBody: newBodyReaders(a.opts.MaxInFlight, perSource(16)),
		maxCheckinBody:   newBodyReaders(4*a.opts.MaxInFlight, perSource(4)),
	}
	serve := func(bodyCap int64, h gin.HandlerFunc) []gin.HandlerFunc {
		read := middleware.ReadBody(bodyCap)
		if r, ok := readers[bodyCap]; ok {
			read = r.read(bodyCap)
		}
		return append(append([]gin.HandlerFunc{read}, inFlight...), h)
	}

	// Native form.
	guarded.POST("/v1/lookup", serve(maxInventoryBody, a.lookupNative)...) // inventory in, node and token out
	guarded.POST("/v1/checkin", serve(maxCheckinBody, a.checkin)...)       // Bearer token; report in, next action out

	// ironic-python-agent's form.
	ipa := guarded.Group("", ironicVersion())
	ipa.GET("/", serve(0, a.root)...)                                                     // version discovery
	ipa.GET("/v1/lookup", serve(0, a.lookupIPA)...)                                       // ?addresses=MAC,...&node_uuid=
	ipa.POST("/v1/heartbeat/:node_ident", serve(maxCheckinBody, a.heartbeat)...)          // agent_token in the body; 202
	ipa.POST("/v1/continue_inspection", serve(maxInventoryBody, a.continueInspection)...) // inventory upload; 202 {"uuid"}

	r.NoRoute(append(guards, func(c *gin.Context) {
		apierror.Write(c.Writer, http.StatusNotFound, "The resource could not be found.")
	})...)
	r.NoMethod(append(guards, func(c *gin.Context) {
		apierror.Write(c.Writer, http.StatusMethodNotAllowed, "The method is not allowed for this resource.")
	})...)
	return r
}
