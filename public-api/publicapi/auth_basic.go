package publicapi

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// BasicAuth accepts "Authorization: Basic" credentials checked against an
// Apache htpasswd file of bcrypt hashes, which is what Ironic's standalone
// http_basic mode reads and what `htpasswd -B` writes.
//
// Roles come from a separate mapping (see ParseRoleMap), not from the
// file, so the file stays usable by other tools. A user the mapping does
// not name gets the mapping's default role ("*"), or no role at all: such
// a user is authenticated but refused (403) everywhere.
type BasicAuth struct {
	hashes      map[string][]byte
	roles       map[string]Role
	defaultRole Role
	// dummyHash is checked for unknown users, so that a wrong user name
	// costs as much time as a wrong password and names cannot be probed.
	dummyHash []byte

	// bcrypt is slow on purpose (tens of milliseconds); a client sends the
	// same credentials with every request, so a successful check is
	// remembered as an HMAC of the password under a per-process key.
	key      [32]byte
	mu       sync.Mutex
	verified map[string][32]byte // user -> HMAC of the password last verified
}

// LoadBasicAuth reads an htpasswd file and a role mapping (see ParseRoleMap).
// Only bcrypt entries ($2a$, $2b$, $2y$) are accepted; every user the
// mapping names must be in the file.
func LoadBasicAuth(path, roleMap string) (*BasicAuth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return NewBasicAuth(f, path, roleMap)
}

// NewBasicAuth is LoadBasicAuth over an open htpasswd file; name is used
// in errors.
func NewBasicAuth(r io.Reader, name, roleMap string) (*BasicAuth, error) {
	a := &BasicAuth{hashes: map[string][]byte{}, verified: map[string][32]byte{}}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("%s line %d: want user:bcrypt-hash", name, line)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%s line %d (user %s): only bcrypt hashes are accepted (htpasswd -B)", name, line, user)
		}
		if _, dup := a.hashes[user]; dup {
			return nil, fmt.Errorf("%s line %d: user %s appears twice", name, line, user)
		}
		a.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(a.hashes) == 0 {
		return nil, fmt.Errorf("%s: no users", name)
	}
	roles, def, err := ParseRoleMap(roleMap)
	if err != nil {
		return nil, err
	}
	for user := range roles {
		if _, ok := a.hashes[user]; !ok {
			return nil, fmt.Errorf("role mapping names user %s, who is not in %s", user, name)
		}
	}
	a.roles, a.defaultRole = roles, def
	if _, err := rand.Read(a.key[:]); err != nil {
		return nil, err
	}
	cost := bcrypt.MinCost
	for _, h := range a.hashes {
		c, _ := bcrypt.Cost(h)
		cost = max(cost, c)
	}
	if a.dummyHash, err = bcrypt.GenerateFromPassword(a.key[:16], cost); err != nil {
		return nil, err
	}
	return a, nil
}

// ParseRoleMap parses "user=role,user=role,*=role": each named user's role,
// and with "*" the role of every other user of the file. Roles are admin,
// member and reader.
func ParseRoleMap(s string) (map[string]Role, Role, error) {
	roles := map[string]Role{}
	def := RoleNone
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		user, roleName, ok := strings.Cut(entry, "=")
		user, roleName = strings.TrimSpace(user), strings.TrimSpace(roleName)
		role, known := roleNames[roleName]
		if !ok || user == "" || !known {
			return nil, RoleNone, fmt.Errorf("role mapping entry %q: want user=role with role admin, member or reader", entry)
		}
		if user == "*" {
			def = role
			continue
		}
		if _, dup := roles[user]; dup {
			return nil, RoleNone, fmt.Errorf("role mapping names user %s twice", user)
		}
		roles[user] = role
	}
	return roles, def, nil
}

// Authenticate implements Authenticator.
func (a *BasicAuth) Authenticate(r *http.Request) (Role, string, bool) {
	user, password, ok := r.BasicAuth()
	if !ok {
		return RoleNone, "", false
	}
	if !a.check(user, password) {
		return RoleNone, "", false
	}
	role, named := a.roles[user]
	if !named {
		role = a.defaultRole
	}
	return role, user, true
}

// Challenge implements Challenger: clients are told to send Basic
// credentials.
func (a *BasicAuth) Challenge() string { return `Basic realm="ferric"` }

func (a *BasicAuth) check(user, password string) bool {
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write([]byte(password))
	var sum [32]byte
	copy(sum[:], mac.Sum(nil))

	a.mu.Lock()
	prev, seen := a.verified[user]
	a.mu.Unlock()
	if seen && hmac.Equal(prev[:], sum[:]) {
		return true
	}
	hash, known := a.hashes[user]
	if !known {
		_ = bcrypt.CompareHashAndPassword(a.dummyHash, []byte(password))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	a.mu.Lock()
	a.verified[user] = sum
	a.mu.Unlock()
	return true
}
