// Package apierror writes errors in Ironic's wire format, which both of
// Ferric's APIs speak because their clients (the baremetal CLI, gophercloud,
// ironic-python-agent) parse it:
//
//	{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"...\", \"debuginfo\": null}"}
//
// The inner document is itself JSON, encoded as a string.
package apierror

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/lib/pq"

	"github.com/ferric-metal/ferric/shared/fault"
)

// RetryAfterSeconds is the Retry-After of every 503: clients (the baremetal
// CLI, IPA) retry a few seconds apart anyway; this tells the others.
const RetryAfterSeconds = "1"

// Body returns the encoded error document for status and message.
func Body(status int, message string) []byte {
	code := "Client"
	if status >= 500 {
		code = "Server"
	}
	inner, _ := json.Marshal(struct {
		FaultCode   string  `json:"faultcode"`
		FaultString string  `json:"faultstring"`
		DebugInfo   *string `json:"debuginfo"`
	}{code, message, nil})
	outer, _ := json.Marshal(map[string]string{"error_message": string(inner)})
	return outer
}

// Write sends an error response with the given status and client message.
// A 503 always says when to retry (Retry-After), unless the caller did.
func Write(w http.ResponseWriter, status int, message string) {
	WriteBody(w, status, Body(status, message))
}

// WriteBody is Write with the document already encoded (Body): refusals
// sent by the thousand encode theirs once.
func WriteBody(w http.ResponseWriter, status int, body []byte) {
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", RetryAfterSeconds)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Describe returns the status and client-safe message for err; errors that
// are not faults become a 500 with a generic message, except an outage of
// the database (or a deadline that passed waiting for it), which is 503:
// the request may well succeed a moment later, and clients retry a 503.
func Describe(err error) (int, string) {
	if fault.KindOf(err) == fault.Internal && Outage(err) {
		return http.StatusServiceUnavailable, "The service is temporarily unavailable (database unreachable); retry later."
	}
	return fault.Status(err), fault.Message(err)
}

// Outage reports whether err says the database could not be reached or is
// restarting, rather than that a statement was wrong: connection refused or
// lost, PostgreSQL shutting down, starting up or out of connections, or the
// request's deadline passing while waiting for it.
func Outage(err error) bool {
	if err == nil {
		return false
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		code := string(pqErr.Code)
		// 08: connection exception; 57P01-03: admin or crash shutdown,
		// cannot connect now (starting up); 53300: too many connections.
		return strings.HasPrefix(code, "08") || code == "57P01" || code == "57P02" || code == "57P03" || code == "53300"
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}

// Abort ends a gin request with err rendered in Ironic's format. It is the
// only place the APIs log request errors: 5xx with their cause (the client
// sees a generic message), other statuses not at all.
func Abort(c *gin.Context, log *slog.Logger, err error) {
	status, msg := Describe(err)
	if status >= 500 {
		log.ErrorContext(c.Request.Context(), "request failed", "method", c.Request.Method,
			"path", c.FullPath(), "status", status, "error", err)
	}
	c.Abort()
	Write(c.Writer, status, msg)
}
