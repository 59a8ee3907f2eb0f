// Package pgcluster starts a private PostgreSQL server from the machine's own
// initdb and pg_ctl, for `make run` and for tests.
//
// initdb refuses to run as root, so when the caller is root the server's
// files are given to the "postgres" user and its commands run as that user.
// The server listens on 127.0.0.1 and on a Unix socket inside its directory.
package pgcluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// ErrNoBinaries is returned when initdb or pg_ctl cannot be found; its text
// says what to install.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl) were not found in PATH or /usr/lib/postgresql/*/bin: " +
	"install them (Debian: apt-get install postgresql) or set FERRIC_DATABASE_URL to an existing server")

// Cluster is a running private server.
type Cluster struct {
	Dir  string // data directory
	Port int
	bin  string
	cred *syscall.Credential
}

// FindBinDir returns the directory holding initdb and pg_ctl: PATH first,
// then the newest /usr/lib/postgresql/*/bin.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises dir if it holds no cluster yet and starts a server on a
// free loopback port. If a previous run left a server running in dir, it is
// stopped first, so Start can be called again after a crash.
func Start(ctx context.Context, dir string) (*Cluster, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresCredential(); err != nil {
			return nil, err
		}
	}
	// The postgres user must be able to reach dir through its parents.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	if c.cred != nil && !c.reachable(ctx, filepath.Dir(dir)) {
		// A checkout under /root, say: keep the files where the postgres
		// user can reach them and leave a symbolic link in dir's place.
		if dir, err = relocate(dir, c.cred); err != nil {
			return nil, err
		}
		c.Dir = dir
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := c.chown(dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.run(ctx, "initdb", "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
			return nil, err
		}
	} else {
		// A server left behind by a killed run would hold the directory.
		_ = c.run(ctx, "pg_ctl", "-D", dir, "-m", "fast", "-w", "stop")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	c.Port = port
	// pg_stat_statements is loaded but tracks nothing unless a database
	// asks (ALTER DATABASE ... SET pg_stat_statements.track = 'top'): tests
	// count the statements an operation runs.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"+
		" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=none", port, dir)
	if err := c.run(ctx, "pg_ctl", "-D", dir, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		return nil, err
	}
	return c, nil
}

// URL returns a connection URL for database name as user postgres.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, name)
}

// Stop shuts the server down cleanly, writing everything to disk, so the
// data survives to the next Start.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return c.run(ctx, "pg_ctl", "-D", c.Dir, "-m", "fast", "-w", "stop")
}

// Kill stops the server at once; recent writes may be lost. For throwaway
// clusters.
func (c *Cluster) Kill() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.run(ctx, "pg_ctl", "-D", c.Dir, "-m", "immediate", "-w", "stop")
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = os.TempDir() // a directory the postgres user can enter
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

// reachable reports whether the postgres user can enter dir.
func (c *Cluster) reachable(ctx context.Context, dir string) bool {
	cmd := exec.CommandContext(ctx, "test", "-x", dir)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	return cmd.Run() == nil
}

// relocate moves the cluster of dir to a folder under /var/tmp named after
// dir, linked from dir, and returns the folder.
func relocate(dir string, cred *syscall.Credential) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	target := filepath.Join("/var/tmp", "ferric-pg-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(target, 0o700); err != nil {
		return "", err
	}
	if err := os.Chown(target, int(cred.Uid), int(cred.Gid)); err != nil {
		return "", err
	}
	if existing, err := os.Readlink(abs); err == nil && existing == target {
		return target, nil
	}
	if err := os.Symlink(target, abs); err != nil {
		return "", fmt.Errorf("the postgres user cannot reach %s, and linking it to %s failed: %w", filepath.Dir(abs), target, err)
	}
	return target, nil
}

func (c *Cluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	return os.Chown(path, int(c.cred.Uid), int(c.cred.Gid))
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, so the server must run as user postgres, which does not exist (apt-get install postgresql creates it): %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
