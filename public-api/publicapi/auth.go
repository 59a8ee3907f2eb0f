package publicapi

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
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
	// verified remembers tokens that passed verification until they
	// expire, so a client pays for one signature check per token, not
	// one per request. Operator tokens cannot be revoked before their
	// expiry, so remembering them changes no answer. Nil: no memory.
	verified *verifiedTokens
}

// NewJWTAuth returns a JWTAuth that remembers verified tokens.
func NewJWTAuth(keys *token.Keys, issuer string) JWTAuth {
	return JWTAuth{Keys: keys, Issuer: issuer, verified: &verifiedTokens{m: map[[32]byte]verifiedToken{}}}
}

// maxVerifiedTokens bounds the memory of verified tokens.
const maxVerifiedTokens = 10_000

type verifiedToken struct {
	role    Role
	subject string
	expires time.Time
}

// verifiedTokens maps a token's hash (not the token) to what it grants.
type verifiedTokens struct {
	mu sync.RWMutex
	m  map[[32]byte]verifiedToken
}

func (v *verifiedTokens) get(key [32]byte, now time.Time) (verifiedToken, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	e, ok := v.m[key]
	return e, ok && now.Before(e.expires.Add(token.Leeway))
}

func (v *verifiedTokens) put(key [32]byte, e verifiedToken, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.m) >= maxVerifiedTokens {
		for k, old := range v.m {
			if !now.Before(old.expires.Add(token.Leeway)) {
				delete(v.m, k)
			}
		}
		if len(v.m) >= maxVerifiedTokens {
			clear(v.m) // a burst of distinct live tokens: start over
		}
	}
	v.m[key] = e
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
	var key [32]byte
	if a.verified != nil {
		key = sha256.Sum256([]byte(raw))
		if e, ok := a.verified.get(key, now()); ok {
			return e.role, e.subject, true
		}
	}
	claims, err := a.Keys.Verify(raw, a.Issuer, token.AudiencePublic, now())
	if err != nil {
		return RoleNone, "", false
	}
	role, ok := roleNames[claims.Role]
	if !ok {
		return RoleNone, "", false
	}
	if a.verified != nil && claims.ExpiresAt != nil {
		a.verified.put(key, verifiedToken{role: role, subject: claims.Subject, expires: claims.ExpiresAt.Time}, now())
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
