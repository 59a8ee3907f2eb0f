// Package middleware holds the gin middleware both APIs put in front of
// their routes: request IDs, access logs, panic recovery, body limits and
// admission.
package middleware

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/jsonbody"
)

// RequestIDHeader is the header Ironic and its clients use for request IDs.
const RequestIDHeader = "X-OpenStack-Request-Id"

var requestIDPattern = regexp.MustCompile(`^req-[0-9a-f-]{36}$`)

// RequestID keeps a well-formed incoming request ID (clients send one to
// correlate logs) or makes a new one, and echoes it on the response.
func RequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !requestIDPattern.MatchString(id) {
			id = "req-" + uuid.NewString()
		}
		c.Set("request_id", id)
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

// AccessLog logs one line per request after it is served, except refusals
// that tell the client to come back later (429, 503): of those, one line per
// status a second, carrying the count of the ones not logged since
// ("unlogged_before"), so that a flood of refused agents cannot spend the
// process's CPU writing logs while every refusal is still counted. A count
// pending when refusals stop goes out with the next line of any request.
func AccessLog(log *slog.Logger) gin.HandlerFunc { return SampledAccessLog(log, time.Second) }

// SampledAccessLog is AccessLog with one refusal line per status per
// interval.
func SampledAccessLog(log *slog.Logger, interval time.Duration) gin.HandlerFunc {
	sampler := &refusalSampler{interval: interval}
	sampler.tooMany.status, sampler.overload.status = http.StatusTooManyRequests, http.StatusServiceUnavailable
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		var unlogged int64
		if r := sampler.slot(status); r != nil {
			var ok bool
			if unlogged, ok = r.take(start, sampler.interval); !ok {
				return
			}
		} else {
			sampler.flush(c, log, start)
		}
		route := c.FullPath()
		if route == "" {
			route = "(unmatched)"
		}
		attrs := []slog.Attr{
			slog.String("request_id", c.GetString("request_id")),
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			// The client, as X-Forwarded-For names it when the peer is a
			// trusted proxy; and then the proxy too.
			slog.String("remote", c.ClientIP()),
		}
		if peer := c.RemoteIP(); peer != c.ClientIP() {
			attrs = append(attrs, slog.String("proxy", peer))
		}
		if unlogged > 0 {
			attrs = append(attrs, slog.Int64("unlogged_before", unlogged))
		}
		log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request", attrs...)
	}
}

// refusalSampler keeps the counts of the sampled refusals, one slot per
// status, without a lock: a refusal costs two atomic operations.
type refusalSampler struct {
	interval          time.Duration
	tooMany, overload refusals
}

// refusals of one status: when the next one may be logged, and how many
// were not logged since the last line.
type refusals struct {
	status   int
	next     atomic.Int64 // unix nanoseconds
	unlogged atomic.Int64
}

func (s *refusalSampler) slot(status int) *refusals {
	switch status {
	case http.StatusTooManyRequests:
		return &s.tooMany
	case http.StatusServiceUnavailable:
		return &s.overload
	}
	return nil
}

// take reports whether this refusal, at now, gets a line, and how many went
// unlogged before it.
func (r *refusals) take(now time.Time, interval time.Duration) (int64, bool) {
	next := r.next.Load()
	if now.UnixNano() < next || !r.next.CompareAndSwap(next, now.Add(interval).UnixNano()) {
		r.unlogged.Add(1)
		return 0, false
	}
	return r.unlogged.Swap(0), true
}

// flush writes the counts of refusals still unlogged whose interval has
// passed, so that none waits for another refusal to be counted.
func (s *refusalSampler) flush(c *gin.Context, log *slog.Logger, now time.Time) {
	for _, r := range []*refusals{&s.tooMany, &s.overload} {
		if r.unlogged.Load() == 0 || now.UnixNano() < r.next.Load() {
			continue
		}
		if n := r.unlogged.Swap(0); n > 0 {
			log.LogAttrs(c.Request.Context(), slog.LevelInfo, "requests refused and not logged one by one",
				slog.Int("status", r.status), slog.Int64("unlogged", n))
		}
	}
}

// Recover turns a panic into a logged 500 in Ironic's format. It is a last
// resort: no code path is meant to panic.
func Recover(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic serving request", "panic", p, "route", c.FullPath(), "stack", string(debug.Stack()))
				if !c.Writer.Written() {
					apierror.Write(c.Writer, http.StatusInternalServerError, "Internal server error. Check the server logs.")
				}
				c.Abort()
			}
		}()
		c.Next()
	}
}

// ReadBody reads the whole request body, at most max bytes, before the
// handlers that follow run, so that a client sending its body slowly holds
// no admission slot (Admit) while it does; the handlers take it from Body.
// A larger body is 413; a body that cannot be read, or whose text is not
// UTF-8 or holds a lone UTF-16 surrogate escape, 400.
func ReadBody(max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if ReadBodyNow(c, max) {
			c.Next()
		}
	}
}

// ReadBodyNow is ReadBody for a middleware of its own: it reads the body
// into memory, or answers 413 or 400 and aborts, and reports whether it
// read it.
func ReadBodyNow(c *gin.Context, max int64) bool {
	if c.Request.ContentLength > max {
		apierror.Write(c.Writer, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body too large (larger than %d bytes).", max))
		c.Abort()
		return false
	}
	if c.Request.Body == nil || c.Request.Body == http.NoBody {
		return true
	}
	body, err := jsonbody.Read(http.MaxBytesReader(c.Writer, c.Request.Body, max))
	if err == nil {
		// Every body of both APIs is JSON: text the decoder would alter
		// (invalid UTF-8, lone surrogates) is refused before any handler.
		err = jsonbody.CheckText(body)
	}
	if err != nil {
		status, msg := apierror.Describe(err)
		apierror.Write(c.Writer, status, msg)
		c.Abort()
		return false
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	c.Set(bodyKey, body)
	return true
}

const bodyKey = "request_body"

// Body returns the body ReadBody read (nil for none): handlers decode it
// from memory rather than reading the request again.
func Body(c *gin.Context) []byte {
	body, _ := c.Get(bodyKey)
	b, _ := body.([]byte)
	return b
}

// Admit lets at most slots requests run the handlers that follow at once;
// the others wait for a slot in the order they came, for at most maxWait,
// and then get 503 with Retry-After.
//
// When more requests arrive than the machine serves, running them all at
// once leaves their order to Go's scheduler, the kernel's and PostgreSQL's,
// and the unlucky ones wait several times as long as the rest. Served first
// come first served (a channel's waiting senders are queued in order, and
// a freed slot goes to the longest waiting), the slowest responses stay
// close to the typical one: see docs/api.md for the figures.
func Admit(slots int, maxWait time.Duration) gin.HandlerFunc {
	gate := make(chan struct{}, slots)
	return func(c *gin.Context) {
		select {
		case gate <- struct{}{}:
		default:
			wait := time.NewTimer(maxWait)
			select {
			case gate <- struct{}{}:
				wait.Stop()
			case <-wait.C:
				busy(c)
				return
			case <-c.Request.Context().Done(): // the client left, or the server is stopping
				wait.Stop()
				busy(c)
				return
			}
		}
		defer func() { <-gate }()
		c.Next()
	}
}

func busy(c *gin.Context) {
	c.Header("Retry-After", "1")
	apierror.Write(c.Writer, http.StatusServiceUnavailable, "The API is busy; retry shortly.")
	c.Abort()
}
