package hwinventory

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Read bounds: a sysfs attribute is at most a page, but a recorded tree or
// a broken driver could say anything; /proc/cpuinfo grows with the CPUs
// (about 1.5 KiB each on x86).
const (
	maxAttrBytes    = 64 << 10
	maxCPUInfoBytes = 16 << 20
	maxSymlinkHops  = 40 // the kernel's own limit (MAXSYMLINKS)
)

var errTooLarge = errors.New("file is larger than expected")

// tree reads a machine's /sys, /proc and /dev under root. Paths are
// root-relative and slash-separated ("sys/block/sda/size"). Symbolic links
// are followed here, one component at a time, with root as "/", so that a
// recorded tree behaves like the machine it came from and the recorder sees
// every link it must copy.
type tree struct {
	root     string
	resolved map[string]string // directory -> its path without links
	rec      *recorder         // nil unless recording
}

func newTree(root string, rec *recorder) *tree {
	return &tree{root: root, resolved: map[string]string{}, rec: rec}
}

func (t *tree) abs(rel string) string { return filepath.Join(t.root, filepath.FromSlash(rel)) }

// resolve returns rel with every symbolic link replaced by its target,
// confined to the tree: ".." stops at the root and absolute targets start
// from it. The result exists.
func (t *tree) resolve(rel string) (string, error) {
	rel = path.Clean("/" + rel)[1:]
	if rel == "" {
		return "", nil
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	resolvedDir, ok := t.resolved[dir]
	if !ok {
		var err error
		if resolvedDir, err = t.walk(dir); err != nil {
			return "", err
		}
		t.resolved[dir] = resolvedDir
	}
	return t.walk(path.Join(resolvedDir, base))
}

// walk resolves rel component by component.
func (t *tree) walk(rel string) (string, error) {
	pending := splitPath(rel)
	current := ""
	hops := 0
	for len(pending) > 0 {
		part := pending[0]
		pending = pending[1:]
		if part == ".." {
			current = parentOf(current)
			continue
		}
		next := path.Join(current, part)
		info, err := os.Lstat(t.abs(next))
		if err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			if info.IsDir() {
				t.rec.dir(next)
			} else {
				t.rec.touch(next) // what only exists (dev/ipmi0) must exist in the copy too
			}
			current = next
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return "", fmt.Errorf("%s: too many levels of symbolic links", rel)
		}
		target, err := os.Readlink(t.abs(next))
		if err != nil {
			return "", err
		}
		t.rec.link(next, target)
		if strings.HasPrefix(target, "/") {
			current = ""
		}
		pending = append(splitPath(target), pending...)
	}
	return current, nil
}

func splitPath(p string) []string {
	var parts []string
	for _, part := range strings.Split(p, "/") {
		if part != "" && part != "." {
			parts = append(parts, part)
		}
	}
	return parts
}

// parentOf is path.Dir for root-relative paths, the root being "".
func parentOf(rel string) string {
	if dir := path.Dir(rel); dir != "." && dir != "/" {
		return dir
	}
	return ""
}

// read returns the content of rel, at most limit bytes.
func (t *tree) read(rel string, limit int64) ([]byte, error) {
	resolved, err := t.resolve(rel)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(t.abs(resolved))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (over %d bytes)", rel, errTooLarge, limit)
	}
	t.rec.file(resolved, data)
	return data, nil
}

// attr returns a sysfs attribute without surrounding white space, or ""
// when it is absent or unreadable: most attributes exist only for some
// devices, and reading some (carrier, speed) fails when a link is down.
func (t *tree) attr(rel string) string {
	data, err := t.read(rel, maxAttrBytes)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// attrBytes is attr for binary attributes (VPD pages), untrimmed.
func (t *tree) attrBytes(rel string) []byte {
	data, err := t.read(rel, maxAttrBytes)
	if err != nil {
		return nil
	}
	return data
}

// readlink returns the target of the link rel (its directory resolved).
func (t *tree) readlink(rel string) (string, error) {
	dir, err := t.resolve(parentOf(rel))
	if err != nil {
		return "", err
	}
	link := path.Join(dir, path.Base(rel))
	target, err := os.Readlink(t.abs(link))
	if err != nil {
		return "", err
	}
	t.rec.link(link, target)
	return target, nil
}

// linkBase is the last element of the target of the link rel ("" when
// absent): a driver's or subsystem's name.
func (t *tree) linkBase(rel string) string {
	target, err := t.readlink(rel)
	if err != nil {
		return ""
	}
	return path.Base(target)
}

// exists reports whether rel exists, links followed.
func (t *tree) exists(rel string) bool {
	_, err := t.resolve(rel)
	return err == nil
}

// isDir reports whether rel is a directory, links followed.
func (t *tree) isDir(rel string) bool {
	resolved, err := t.resolve(rel)
	if err != nil {
		return false
	}
	info, err := os.Stat(t.abs(resolved))
	return err == nil && info.IsDir()
}

// list returns the names in the directory rel, sorted. Only directories and
// links are recorded: no listing here looks for anything else.
func (t *tree) list(rel string) ([]string, error) {
	resolved, err := t.resolve(rel)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(t.abs(resolved))
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
		entry := path.Join(resolved, e.Name())
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			if target, err := os.Readlink(t.abs(entry)); err == nil {
				t.rec.link(entry, target)
			}
		case e.IsDir():
			t.rec.dir(entry)
		}
	}
	slices.Sort(names)
	return names, nil
}
