package publicapi

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Role names, for the audit log.
func (r Role) String() string {
	for name, role := range roleNames {
		if role == r {
			return name
		}
	}
	return "none"
}

// audit writes one record per mutating request (POST, PUT, PATCH, DELETE)
// and per vendor passthru call (whatever its verb: it runs driver code)
// once it has been answered, refused ones included, whatever refused them
// (an unknown path, a version, credentials, a panic answered 500): who
// (subject and role, or "anonymous" when authentication failed or did not
// run), what (method and route), on what (the node, port, chassis or
// driver named in the path, and the UUID of a resource created), from
// where, and the result. Bodies and query strings are never logged: they
// may carry BMC credentials.
func (a *API) audit(c *gin.Context) {
	route := c.FullPath()
	calls := strings.Contains(route, "/vendor_passthru") && !strings.HasSuffix(route, "/methods")
	if (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) && !calls {
		c.Next()
		return
	}
	c.Next()
	if route == "" {
		route = "(unmatched)"
	}
	status := c.Writer.Status()
	subject, role := "anonymous", RoleNone
	if s, ok := c.Get(subjectKey); ok {
		subject = s.(string)
	}
	if r, ok := c.Get(roleKey); ok {
		role = r.(Role)
	}
	attrs := []slog.Attr{
		slog.String("request_id", c.GetString("request_id")),
		slog.String("subject", subject),
		slog.String("role", role.String()),
		slog.String("remote", c.RemoteIP()),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
	}
	for _, p := range c.Params {
		key := p.Key
		if auditKeys[key] { // e.g. vendor passthru's {method}
			key = "path_" + key
		}
		attrs = append(attrs, slog.String(key, p.Value))
	}
	if loc := c.Writer.Header().Get("Location"); loc != "" && status == http.StatusCreated {
		attrs = append(attrs, slog.String("created", loc[strings.LastIndex(loc, "/")+1:]))
	}
	attrs = append(attrs, slog.Int("status", status), slog.String("result", auditResult(status)))
	a.auditLog.LogAttrs(c.Request.Context(), slog.LevelInfo, "audit", attrs...)
}

// auditKeys are the record's own keys, which path parameters must not
// shadow.
var auditKeys = map[string]bool{
	"request_id": true, "subject": true, "role": true, "remote": true, "method": true,
	"route": true, "created": true, "status": true, "result": true, "audit": true,
}

func auditResult(status int) string {
	switch {
	case status < 400:
		return "success"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "denied"
	case status < 500:
		return "refused"
	}
	return "error"
}
