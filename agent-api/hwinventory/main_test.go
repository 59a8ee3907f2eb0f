package hwinventory

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordTo, when set, makes TestRecordThisMachine record the machine
// running the test as a tree archive:
//
//	go test ./agent-api/hwinventory -run TestRecordThisMachine -record testdata/machines/this-machine.tree
var recordTo = flag.String("record", "", "record the machine running the test into this tree archive")

var (
	sharedDir   string
	sharedTrees sync.Map // name -> *sharedTree
)

type sharedTree struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "hwinventory-trees-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// machineTree returns testdata/machines/<name>.tree materialized once for
// the whole test binary: tests must not change it (extractTree gives a
// private copy to change).
func machineTree(t testing.TB, name string) string {
	t.Helper()
	v, _ := sharedTrees.LoadOrStore(name, &sharedTree{})
	st := v.(*sharedTree)
	st.once.Do(func() {
		data, err := os.ReadFile(filepath.Join("testdata", "machines", name+".tree"))
		if err != nil {
			st.err = err
			return
		}
		st.dir = filepath.Join(sharedDir, name)
		st.err = extractArchive(data, st.dir)
	})
	if st.err != nil {
		t.Fatalf("%s.tree: %v", name, st.err)
	}
	return st.dir
}

func TestRecordThisMachine(t *testing.T) {
	if *recordTo == "" {
		t.Skip("records the machine running the test only with -record FILE")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := RecordTree(ctx, Options{}, dir); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	comment := fmt.Sprintf("Recorded by TestRecordThisMachine on %s (%s) on %s:\nwhat Collect read of the machine, copied by RecordTree.",
		host, strings.TrimSpace(readOr("/proc/sys/kernel/osrelease")), time.Now().UTC().Format("2006-01-02"))
	archive, err := writeArchive(dir, comment)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(*recordTo, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d bytes into %s", len(archive), *recordTo)
}

func readOr(name string) string {
	data, err := os.ReadFile(name)
	if err != nil {
		return "unknown kernel"
	}
	return string(data)
}
