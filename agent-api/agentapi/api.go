// Package agentapi is Ferric's agent API: the only service deploy agents on
// the provisioning VLAN can reach. It offers lookup (which node am I?) and
// checkin (I am alive: what next?), in Ferric's native form and in the form
// ironic-python-agent speaks, and nothing else: every other path is 404.
//
// The process holds no BMC credentials and runs no drivers; it reads and
// writes the database through the conductor's agent side (conductor/agents)
// only. The native form's bodies are agentwire's types, which ferric-agent
// shares. In front of the
// handlers (routes.go) sit the hardening guards (guards.go): a source
// allow-list, a per-source rate limit, a global limit on requests in flight,
// a deadline per request and capped bodies.
package agentapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor/agents"
	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/httpserver"
	"github.com/ferric-metal/ferric/shared/ratelimit"
)

// ServerTimeouts bound how long one client may hold a connection to the
// agent listener: agents send small requests, so a slow client is cut off
// early instead of holding a connection (and a slot) for long.
var ServerTimeouts = httpserver.Timeouts{
	ReadHeader: 5 * time.Second,
	Read:       15 * time.Second,
	Write:      15 * time.Second,
	Idle:       60 * time.Second,
}

// Options harden the agent API. Zero values take the defaults noted.
type Options struct {
	// AllowedSources are the networks agents may connect from; others get
	// 403. Empty: any source.
	AllowedSources []netip.Prefix
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For is believed. Empty: none; the peer is the client.
	TrustedProxies []string
	// RateLimit is the requests per second one source (an IPv6 /64) may
	// send, in bursts of twice that; 0 disables the limit.
	RateLimit float64
	// MaxInFlight bounds the requests served at once; more get 503 at
	// once. Default 256.
	MaxInFlight int
	// BodiesPerSource bounds the request bodies one source (an address, an
	// IPv6 /64) may be sending at once, of each kind (inventories, small
	// bodies); 0: a sixteenth of MaxInFlight for inventories, a quarter
	// for small bodies. Behind a proxy, set TrustedProxies, or every agent
	// is the proxy.
	BodiesPerSource int
	// RequestTimeout is the deadline of one request's work. Default 10 s.
	RequestTimeout time.Duration
	// Now is the clock of the rate limiter. Default time.Now.
	Now func() time.Time
}

// maxRateLimitKeys bounds the sources the rate limiter tracks one by one.
const maxRateLimitKeys = 100_000

// API holds the handlers' dependencies.
type API struct {
	agents  *agents.Agents
	log     *slog.Logger
	opts    Options
	limiter *ratelimit.Limiter // nil when the rate limit is off
}

// New returns the agent API over the conductor's agent side.
func New(side *agents.Agents, log *slog.Logger, opts Options) (*API, error) {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 256
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RateLimit < 0 {
		return nil, errors.New("negative rate limit")
	}
	a := &API{agents: side, log: log, opts: opts}
	if opts.RateLimit > 0 {
		a.limiter = ratelimit.New(opts.RateLimit, max(1, int(2*opts.RateLimit)), maxRateLimitKeys)
	}
	for _, p := range opts.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", p, err)
		}
	}
	return a, nil
}

func (a *API) fail(c *gin.Context, err error) { apierror.Abort(c, a.log, err) }
