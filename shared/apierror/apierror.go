// Package apierror writes errors in Ironic's wire format, which both of
// Ferric's APIs speak because their clients (the baremetal CLI, gophercloud,
// ironic-python-agent) parse it:
//
//	{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"...\", \"debuginfo\": null}"}
//
// The inner document is itself JSON, encoded as a string.
package apierror

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/fault"
)

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
func Write(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(Body(status, message))
}

// Describe returns the status and client-safe message for err; errors that
// are not faults become a 500 with a generic message.
func Describe(err error) (int, string) {
	return fault.Status(err), fault.Message(err)
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
