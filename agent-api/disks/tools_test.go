package disks

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testToolTimeout = 2 * time.Minute

// toolPackages are the Debian packages providing the tools the tests check
// results with.
var toolPackages = map[string]string{
	"sfdisk":    "fdisk",
	"sgdisk":    "gdisk",
	"blkid":     "util-linux",
	"wipefs":    "util-linux",
	"mkswap":    "util-linux",
	"mkfs.ext4": "e2fsprogs",
	"mkfs.vfat": "dosfstools",
	"isoinfo":   "genisoimage",
	"losetup":   "mount",
}

// requireTool skips the test when a tool is missing, except in CI, where
// the tools are installed and a missing one is a failure.
func requireTool(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI (Debian package %s): %v", name, toolPackages[name], err)
			}
			t.Skipf("%s not installed (Debian package %s)", name, toolPackages[name])
		}
	}
}

// run runs a tool and returns its standard output, failing the test when
// it fails.
func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runTool(stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// runTool runs a tool and returns its output and error.
func runTool(stdin string, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), testToolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	// Untranslated messages, as the assertions expect.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// diskFile makes a sparse file of size bytes standing in for a disk.
func diskFile(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func growFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func readFileRange(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}
