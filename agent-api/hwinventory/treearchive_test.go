package hwinventory

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Test machines are kept as tree archives (testdata/machines/*.tree), text
// files that materialize into a directory of files, directories and
// symbolic links. The trees cannot be kept as they are: sysfs names hold
// colons (0000:00:17.0, 0:0:0:0), which a Go module's zip refuses, and
// module zips drop symbolic links.
//
// After comment lines (#), an archive is a list of entries, each a header
// line and, for files, the content lines that follow it:
//
//	-- sys/block/sda -> ../devices/pci0000:00/.../block/sda --   a link
//	-- sys/firmware/efi/ --                                     an empty directory
//	-- sys/block/sda/size --                                    a file, content below
//	-- sys/block/vda/serial (noeol) --                          the same, no final newline
//	-- sys/block/sda/device/vpd_pg80 (hex) --                   binary content in hex
//
// A file's content is every line up to the next header line.

const (
	noEOLSuffix = " (noeol)"
	hexSuffix   = " (hex)"
)

func isHeader(line string) bool {
	return strings.HasPrefix(line, "-- ") && strings.HasSuffix(line, " --") && len(line) > 6
}

// extractArchive materializes a tree archive into dir.
func extractArchive(data []byte, dir string) error {
	type entry struct {
		header  string
		content []string
	}
	var entries []*entry
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(nil, 1<<20)
	for lineNo := 1; scanner.Scan(); lineNo++ {
		line := scanner.Text()
		switch {
		case isHeader(line):
			entries = append(entries, &entry{header: line[3 : len(line)-3]})
		case len(entries) == 0:
			if line != "" && !strings.HasPrefix(line, "#") {
				return fmt.Errorf("line %d: content before the first entry", lineNo)
			}
		default:
			e := entries[len(entries)-1]
			e.content = append(e.content, line)
		}
	}
	if err := scanner.Err(); err != nil {
		return err
	}
	made := map[string]bool{}
	mkParent := func(dir, name string) error {
		parent := filepath.Dir(filepath.Join(dir, name))
		if made[parent] {
			return nil
		}
		made[parent] = true
		return os.MkdirAll(parent, 0o755)
	}
	for _, e := range entries {
		name, target, isLink := strings.Cut(e.header, " -> ")
		switch {
		case isLink:
			if err := mkParent(dir, name); err != nil {
				return err
			}
			if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
				return err
			}
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
				return err
			}
		default:
			var content []byte
			switch {
			case strings.HasSuffix(name, hexSuffix):
				name = strings.TrimSuffix(name, hexSuffix)
				decoded, err := hex.DecodeString(strings.Join(strings.Fields(strings.Join(e.content, " ")), ""))
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				content = decoded
			case strings.HasSuffix(name, noEOLSuffix):
				name = strings.TrimSuffix(name, noEOLSuffix)
				content = []byte(strings.Join(e.content, "\n"))
			default:
				for _, l := range e.content {
					content = append(content, l...)
					content = append(content, '\n')
				}
			}
			if err := mkParent(dir, name); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func mkParent(dir, name string) error {
	return os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
}

// writeArchive is extractArchive's inverse, entries in path order.
func writeArchive(dir string, comment string) ([]byte, error) {
	var out bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(comment), "\n") {
		fmt.Fprintf(&out, "# %s\n", line)
	}
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	for _, p := range names {
		rel := filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		info, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&out, "-- %s -> %s --\n", rel, target)
		case info.IsDir():
			if entries, err := os.ReadDir(p); err == nil && len(entries) == 0 {
				fmt.Fprintf(&out, "-- %s/ --\n", rel)
			}
		default:
			content, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			writeFileEntry(&out, rel, content)
		}
	}
	return out.Bytes(), nil
}

func writeFileEntry(out *bytes.Buffer, rel string, content []byte) {
	text := string(content)
	printable := utf8.ValidString(text) && !strings.ContainsFunc(text, func(r rune) bool {
		return r < ' ' && r != '\n' && r != '\t'
	})
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if printable && slices.ContainsFunc(lines, isHeader) {
		printable = false
	}
	switch {
	case len(content) == 0:
		fmt.Fprintf(out, "-- %s --\n", rel)
	case !printable:
		fmt.Fprintf(out, "-- %s%s --\n", rel, hexSuffix)
		for chunk := content; len(chunk) > 0; {
			n := min(len(chunk), 16)
			fmt.Fprintf(out, "% x\n", chunk[:n])
			chunk = chunk[n:]
		}
	case !strings.HasSuffix(text, "\n"):
		fmt.Fprintf(out, "-- %s%s --\n%s\n", rel, noEOLSuffix, text)
	default:
		fmt.Fprintf(out, "-- %s --\n%s", rel, text)
	}
}

// extractTree materializes testdata/machines/<name>.tree in a temporary
// directory and returns it.
func extractTree(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "machines", name+".tree"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := extractArchive(data, dir); err != nil {
		t.Fatalf("%s.tree: %v", name, err)
	}
	return dir
}

func TestArchiveRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string][]byte{
		"a/text":     []byte("one\ntwo\n"),
		"a/noeol":    []byte("overlayblk"),
		"a/binary":   {0, 0x80, 0, 2, 'A', ' '},
		"a/empty":    {},
		"a/header":   []byte("-- looks like a header --\n"),
		"a/trailing": []byte("x\n\n"),
	}
	for name, content := range files {
		if err := mkParent(dir, name); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../a/text", filepath.Join(dir, "a/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "b/empty-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	archive, err := writeArchive(dir, "round trip")
	if err != nil {
		t.Fatal(err)
	}
	back := t.TempDir()
	if err := extractArchive(archive, back); err != nil {
		t.Fatalf("%v\n%s", err, archive)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(back, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: got %q (%v), want %q\narchive:\n%s", name, got, err, want, archive)
		}
	}
	if target, err := os.Readlink(filepath.Join(back, "a/link")); err != nil || target != "../a/text" {
		t.Errorf("a/link -> %q (%v), want ../a/text", target, err)
	}
	if info, err := os.Stat(filepath.Join(back, "b/empty-dir")); err != nil || !info.IsDir() {
		t.Errorf("b/empty-dir: %v", err)
	}
}
