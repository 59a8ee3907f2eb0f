package agentapi

import (
	"context"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/middleware"
	"github.com/ferric-metal/ferric/shared/ratelimit"
)

// The guards run before every agent route, in the order routes.go lists
// them. Each answers at once, before any body is read or any database
// work is done.

const sourceKey = "agent_source"

// source resolves the client's address: the peer's, or the one a trusted
// proxy put in X-Forwarded-For (gin only reads the header from the
// proxies configured in Options.TrustedProxies).
func source() gin.HandlerFunc {
	return func(c *gin.Context) {
		addr, err := netip.ParseAddr(c.ClientIP())
		if err != nil {
			apierror.Write(c.Writer, http.StatusBadRequest, "The client address could not be determined.")
			c.Abort()
			return
		}
		c.Set(sourceKey, addr.Unmap())
		c.Next()
	}
}

func sourceOf(c *gin.Context) netip.Addr {
	addr, _ := c.Get(sourceKey)
	a, _ := addr.(netip.Addr)
	return a
}

// allowSources refuses clients outside the allowed networks with 403;
// with none configured every source is allowed.
func allowSources(allowed []netip.Prefix) gin.HandlerFunc {
	return func(c *gin.Context) {
		if len(allowed) == 0 {
			c.Next()
			return
		}
		addr := sourceOf(c)
		for _, p := range allowed {
			if p.Contains(addr) {
				c.Next()
				return
			}
		}
		apierror.Write(c.Writer, http.StatusForbidden, "Access was denied: the source address is not on the provisioning network.")
		c.Abort()
	}
}

// tooManyRequestsBody is encoded once: a flood is refused by the thousand.
var tooManyRequestsBody = apierror.Body(http.StatusTooManyRequests, "Too many requests from this address; retry after the time in Retry-After.")

// rateLimit allows each source its token bucket's worth of requests and
// answers 429 with Retry-After beyond it.
func (a *API) rateLimit() gin.HandlerFunc {
	return func(c *gin.Context) {
		if a.limiter == nil {
			c.Next()
			return
		}
		ok, wait := a.limiter.Allow(ratelimit.ClientKey(sourceOf(c)), a.opts.Now())
		if !ok {
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			apierror.WriteBody(c.Writer, http.StatusTooManyRequests, tooManyRequestsBody)
			c.Abort()
			return
		}
		c.Next()
	}
}

// bodyReaders bounds the request bodies being read at once, in all and
// from one source (ratelimit.ClientKey: an address, an IPv6 /64). Bodies
// are read before a request takes an in-flight slot, so that a host
// sending slowly holds none; these bounds keep slow senders from filling
// memory instead, and one source from taking all the readers.
type bodyReaders struct {
	slots     chan struct{}
	perSource int

	mu     sync.Mutex
	active map[netip.Prefix]int
}

func newBodyReaders(total, perSource int) *bodyReaders {
	return &bodyReaders{slots: make(chan struct{}, total), perSource: perSource, active: map[netip.Prefix]int{}}
}

// read takes a reader, reads the body (at most max bytes: 413 beyond) and
// gives the reader back before the handlers that follow run. Beyond either
// bound: 503 at once, with Retry-After.
func (b *bodyReaders) read(max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		key := ratelimit.ClientKey(sourceOf(c))
		b.mu.Lock()
		mine := b.active[key] < b.perSource
		if mine {
			b.active[key]++
		}
		b.mu.Unlock()
		if mine {
			select {
			case b.slots <- struct{}{}:
			default:
				mine = false
				b.release(key, false)
			}
		}
		if !mine {
			c.Header("Retry-After", "1")
			apierror.Write(c.Writer, http.StatusServiceUnavailable, "The agent API is busy; retry shortly.")
			c.Abort()
			return
		}
		ok := middleware.ReadBodyNow(c, max)
		b.release(key, true)
		if ok {
			c.Next()
		}
	}
}

func (b *bodyReaders) release(key netip.Prefix, slot bool) {
	if slot {
		<-b.slots
	}
	b.mu.Lock()
	if b.active[key]--; b.active[key] <= 0 {
		delete(b.active, key)
	}
	b.mu.Unlock()
}

// limitInFlight serves at most n requests at once; the next gets 503 at
// once rather than queueing behind them.
func limitInFlight(n int) gin.HandlerFunc {
	slots := make(chan struct{}, n)
	return func(c *gin.Context) {
		select {
		case slots <- struct{}{}:
		default:
			c.Header("Retry-After", "1")
			apierror.Write(c.Writer, http.StatusServiceUnavailable, "The agent API is busy; retry shortly.")
			c.Abort()
			return
		}
		defer func() { <-slots }()
		c.Next()
	}
}

// deadline bounds the work of one request: the database calls under it
// give up when it passes.
func deadline(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}

// advertisedVersion is the API version GET / advertises; IPA needs at least
// 1.68 to send agent tokens and versions.
const advertisedVersion = "1.81"

// ironicVersion refuses an X-OpenStack-Ironic-API-Version this API cannot
// serve, as Ironic does: malformed is 400, above the maximum 406.
func ironicVersion() gin.HandlerFunc {
	maxMinor, _ := strconv.Atoi(strings.TrimPrefix(advertisedVersion, "1."))
	return func(c *gin.Context) {
		v := c.GetHeader("X-OpenStack-Ironic-API-Version")
		if v == "" || v == "latest" {
			c.Next()
			return
		}
		major, minor, ok := strings.Cut(v, ".")
		n, err := strconv.Atoi(minor)
		if !ok || major != "1" || err != nil || n < 1 {
			apierror.Write(c.Writer, http.StatusBadRequest, "Invalid value for X-OpenStack-Ironic-API-Version: "+strconv.Quote(v)+".")
			c.Abort()
			return
		}
		if n > maxMinor {
			apierror.Write(c.Writer, http.StatusNotAcceptable, "Version "+v+" was requested but the maximum supported version is "+advertisedVersion+".")
			c.Abort()
			return
		}
		c.Next()
	}
}
