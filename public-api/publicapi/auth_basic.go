package publicapi

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

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
//
// Loaded from a path, it reads the file again when it changes (checked at
// most once a second), as Ironic reads it on every request: a password
// changed or a user removed takes effect without a restart. A file that
// no longer parses is logged and the last good one kept.
type BasicAuth struct {
	// bcrypt is slow on purpose (tens of milliseconds); a client sends the
	// same credentials with every request, so a successful check is
	// remembered as an HMAC of the password under a per-process key, until
	// the file changes.
	key [32]byte

	mu       sync.Mutex
	users    *htpasswdUsers
	verified map[string][32]byte // user -> HMAC of the password last verified

	// Set when loaded from a file: what to read again, and when.
	path, roleMap string
	log           *slog.Logger
	reloadMu      sync.Mutex // one reload at a time, outside mu
	loaded        fileStamp  // the file as last read, good or not
	nextCheck     time.Time
}

// htpasswdUsers is one reading of the file and the role mapping.
type htpasswdUsers struct {
	hashes      map[string][]byte
	roles       map[string]Role
	defaultRole Role
	// dummyHash is checked for unknown users, so that a wrong user name
	// costs as much time as a wrong password and names cannot be probed.
	dummyHash []byte
}

// fileStamp tells whether a file changed since it was read.
type fileStamp struct {
	modTime time.Time
	size    int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// LoadBasicAuth reads an htpasswd file and a role mapping (see
// ParseRoleMap), and reads the file again whenever it changes, logging to
// log a version it cannot use. Only bcrypt entries ($2a$, $2b$, $2y$) are
// accepted; every user the mapping names must be in the file.
func LoadBasicAuth(path, roleMap string, log *slog.Logger) (*BasicAuth, error) {
	stamp, err := stampOf(path)
	if err != nil {
		return nil, err
	}
	users, err := readHTPasswd(path, roleMap)
	if err != nil {
		return nil, err
	}
	a, err := newBasicAuth(users)
	if err != nil {
		return nil, err
	}
	a.path, a.roleMap, a.log, a.loaded = path, roleMap, log, stamp
	a.nextCheck = time.Now().Add(reloadCheckInterval)
	return a, nil
}

// reloadCheckInterval is how often a loaded file is checked for changes.
const reloadCheckInterval = time.Second

// NewBasicAuth is LoadBasicAuth over an open htpasswd file, read once;
// name is used in errors.
func NewBasicAuth(r io.Reader, name, roleMap string) (*BasicAuth, error) {
	users, err := parseHTPasswd(r, name, roleMap)
	if err != nil {
		return nil, err
	}
	return newBasicAuth(users)
}

func newBasicAuth(users *htpasswdUsers) (*BasicAuth, error) {
	a := &BasicAuth{users: users, verified: map[string][32]byte{}}
	if _, err := rand.Read(a.key[:]); err != nil {
		return nil, err
	}
	return a, nil
}

func readHTPasswd(path, roleMap string) (*htpasswdUsers, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseHTPasswd(f, path, roleMap)
}

func parseHTPasswd(r io.Reader, name, roleMap string) (*htpasswdUsers, error) {
	u := &htpasswdUsers{hashes: map[string][]byte{}}
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
		if _, dup := u.hashes[user]; dup {
			return nil, fmt.Errorf("%s line %d: user %s appears twice", name, line, user)
		}
		u.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(u.hashes) == 0 {
		return nil, fmt.Errorf("%s: no users", name)
	}
	roles, def, err := ParseRoleMap(roleMap)
	if err != nil {
		return nil, err
	}
	for user := range roles {
		if _, ok := u.hashes[user]; !ok {
			return nil, fmt.Errorf("role mapping names user %s, who is not in %s", user, name)
		}
	}
	u.roles, u.defaultRole = roles, def
	cost := bcrypt.MinCost
	for _, h := range u.hashes {
		c, _ := bcrypt.Cost(h)
		cost = max(cost, c)
	}
	var dummy [16]byte
	if _, err := rand.Read(dummy[:]); err != nil {
		return nil, err
	}
	if u.dummyHash, err = bcrypt.GenerateFromPassword(dummy[:], cost); err != nil {
		return nil, err
	}
	return u, nil
}

// current returns the users, reading the file again first when it is due
// a check and has changed.
func (a *BasicAuth) current() *htpasswdUsers {
	if a.path != "" && a.reloadMu.TryLock() { // others go on with what is loaded
		defer a.reloadMu.Unlock()
		if now := time.Now(); now.After(a.nextCheck) {
			a.nextCheck = now.Add(reloadCheckInterval)
			a.reload()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.users
}

// reload reads the file if it changed since it was last read; the caller
// holds reloadMu.
func (a *BasicAuth) reload() {
	stamp, err := stampOf(a.path)
	if err == nil && stamp == a.loaded {
		return
	}
	if err != nil {
		if a.loaded != (fileStamp{}) {
			a.log.Warn("htpasswd file unreadable; keeping the users last read", "file", a.path, "error", err)
		}
		a.loaded = fileStamp{}
		return
	}
	a.loaded = stamp
	users, err := readHTPasswd(a.path, a.roleMap)
	if err != nil {
		a.log.Warn("htpasswd file changed but cannot be used; keeping the users last read", "file", a.path, "error", err)
		return
	}
	a.mu.Lock()
	a.users, a.verified = users, map[string][32]byte{}
	a.mu.Unlock()
	a.log.Info("htpasswd file read again", "file", a.path, "users", len(users.hashes))
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
	users := a.current()
	if !a.check(users, user, password) {
		return RoleNone, "", false
	}
	role, named := users.roles[user]
	if !named {
		role = users.defaultRole
	}
	return role, user, true
}

// Challenge implements Challenger: clients are told to send Basic
// credentials.
func (a *BasicAuth) Challenge() string { return `Basic realm="ferric"` }

func (a *BasicAuth) check(users *htpasswdUsers, user, password string) bool {
	mac := hmac.New(sha256.New, a.key[:])
	mac.Write([]byte(password))
	var sum [32]byte
	copy(sum[:], mac.Sum(nil))

	a.mu.Lock()
	prev, seen := a.verified[user]
	fresh := users == a.users
	a.mu.Unlock()
	if seen && fresh && hmac.Equal(prev[:], sum[:]) {
		return true
	}
	hash, known := users.hashes[user]
	if !known {
		_ = bcrypt.CompareHashAndPassword(users.dummyHash, []byte(password))
		return false
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	a.mu.Lock()
	if users == a.users { // not a check against a file read over meanwhile
		a.verified[user] = sum
	}
	a.mu.Unlock()
	return true
}
