// Package middleware holds the gin middleware both APIs put in front of
// their routes: request IDs, access logs, panic recovery and body limits.
package middleware

import (
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/shared/apierror"
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

// AccessLog logs one line per request after it is served.
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "(unmatched)"
		}
		log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request",
			slog.String("request_id", c.GetString("request_id")),
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.Int("status", c.Writer.Status()),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", c.RemoteIP()),
		)
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

// LimitBody caps request bodies at max bytes; reading past it fails with an
// *http.MaxBytesError, which jsonbody.Read turns into 413.
func LimitBody(max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > max {
			apierror.Write(c.Writer, http.StatusRequestEntityTooLarge, "Request body too large.")
			c.Abort()
			return
		}
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
		c.Next()
	}
}
