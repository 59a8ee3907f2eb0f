package publicapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/token"
)

// Role is an operator role, from least to most privileged.
type Role int

// Roles. Reader reads; Member also acts on nodes (power, provision,
// passthru); Admin also enrolls, edits and deletes.
const (
	RoleNone Role = iota
	RoleReader
	RoleMember
	RoleAdmin
)

var roleNames = map[string]Role{"reader": RoleReader, "member": RoleMember, "admin": RoleAdmin}

// ValidRole reports whether name is a role a token may carry.
func ValidRole(name string) bool { _, ok := roleNames[name]; return ok }

// Authenticator checks operator credentials.
type Authenticator interface {
	// Authenticate returns the caller's role and a name for the audit log,
	// or ok=false when the request carries no valid credentials.
	Authenticate(r *http.Request) (role Role, subject string, ok bool)
}

// Challenger is an Authenticator that names the scheme clients should use
// in the WWW-Authenticate header of a 401 (default: Bearer).
type Challenger interface {
	Challenge() string
}

// NoAuth accepts every request as admin, ignoring credentials, as Ironic's
// noauth mode does. Programs allow it on loopback listeners only.
type NoAuth struct{}

// Authenticate implements Authenticator.
func (NoAuth) Authenticate(*http.Request) (Role, string, bool) { return RoleAdmin, "noauth", true }

// JWTAuth accepts operator tokens in "Authorization: Bearer" or
// "X-Auth-Token" (the header the baremetal CLI's token mode sends).
type JWTAuth struct {
	Keys   *token.Keys
	Issuer string
	Now    func() time.Time
}

// Authenticate implements Authenticator.
func (a JWTAuth) Authenticate(r *http.Request) (Role, string, bool) {
	raw := r.Header.Get("X-Auth-Token")
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return RoleNone, "", false
		}
		raw = strings.TrimSpace(rest)
	}
	if raw == "" {
		return RoleNone, "", false
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	claims, err := a.Keys.Verify(raw, a.Issuer, token.AudiencePublic, now())
	if err != nil {
		return RoleNone, "", false
	}
	role, ok := roleNames[claims.Role]
	if !ok {
		return RoleNone, "", false
	}
	return role, claims.Subject, true
}

const roleKey, subjectKey = "role", "subject"

// authenticate rejects requests without valid credentials with 401.
func (a *API) authenticate(c *gin.Context) {
	role, subject, ok := a.auth.Authenticate(c.Request)
	if !ok {
		challenge := `Bearer realm="ferric"`
		if ch, isChallenger := a.auth.(Challenger); isChallenger {
			challenge = ch.Challenge()
		}
		c.Header("WWW-Authenticate", challenge)
		apierror.Write(c.Writer, http.StatusUnauthorized, "Authentication required: valid operator credentials are needed.")
		c.Abort()
		return
	}
	c.Set(roleKey, role)
	c.Set(subjectKey, subject)
	c.Next()
}

// require admits callers holding at least role.
func require(role Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		if have, _ := c.Get(roleKey); have.(Role) < role {
			apierror.Write(c.Writer, http.StatusForbidden, "Access was denied to this resource: the operator role is not sufficient.")
			c.Abort()
			return
		}
		c.Next()
	}
}
