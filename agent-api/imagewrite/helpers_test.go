package imagewrite

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// testFile is what the test server serves at one path.
type testFile struct {
	data     []byte
	etag     string
	modTime  time.Time
	noRanges bool // no Accept-Ranges, Range ignored
	// after the first whole-file answer, serve swapTo instead, under
	// swapETag (the same ETag: a server that lies)
	swapTo   []byte
	swapETag string
}

// fault is a misbehaviour applied to the next answers with a body.
type fault struct {
	kind   string // "cut": drop the connection; "stall": stop sending; "die": stop the server
	after  int64  // body bytes sent first
	times  int    // how many answers; 0 means every one
	ranges bool   // only answers to range requests
}

// imageServer is a real HTTP(S) server of in-memory files with faults to
// order.
type imageServer struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	files    map[string]*testFile
	statuses map[string][]int // answered first, in order, for a path
	fault    *fault
	requests []*http.Request
	quit     chan struct{}
}

func newImageServer(t *testing.T, tlsServer bool) *imageServer {
	t.Helper()
	s := &imageServer{t: t, files: map[string]*testFile{}, statuses: map[string][]int{}, quit: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // aborted answers and TLS refusals are the point
	if tlsServer {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(func() {
		close(s.quit)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

func (s *imageServer) add(name string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sum := sha256.Sum256(data)
	s.files["/"+name] = &testFile{data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`,
		modTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	return s.url(name)
}

// change edits a file's serving under the server's lock.
func (s *imageServer) change(name string, edit func(*testFile)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(s.files["/"+name])
}

func (s *imageServer) etag(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files["/"+name].etag
}

func (s *imageServer) url(name string) string { return s.srv.URL + "/" + name }

func (s *imageServer) setFault(f *fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

func (s *imageServer) answerFirst(name string, statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses["/"+name] = statuses
}

// requestsFor lists the requests a path received.
func (s *imageServer) requestsFor(name string) []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*http.Request
	for _, r := range s.requests {
		if r.URL.Path == "/"+name {
			out = append(out, r)
		}
	}
	return out
}

func (s *imageServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(context.Background()))
	if q := s.statuses[r.URL.Path]; len(q) > 0 {
		s.statuses[r.URL.Path] = q[1:]
		s.mu.Unlock()
		http.Error(w, "injected", q[0])
		return
	}
	f := s.files[r.URL.Path]
	var flt *fault
	if s.fault != nil && (!s.fault.ranges || r.Header.Get("Range") != "") {
		flt = s.fault
		if flt.times > 0 {
			if flt.times--; flt.times == 0 {
				s.fault = nil
			}
		}
	}
	if f == nil {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	data, etag, modTime, noRanges := f.data, f.etag, f.modTime, f.noRanges
	if r.Header.Get("Range") == "" && f.swapTo != nil {
		f.data, f.swapTo = f.swapTo, nil
		if f.swapETag != "" {
			f.etag = f.swapETag
		}
	}
	s.mu.Unlock()
	out := io.Writer(w)
	if flt != nil {
		out = &faultyWriter{w: w, s: s, r: r, fault: flt, left: flt.after}
	}
	if noRanges {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		_, _ = out.Write(data)
		return
	}
	w.Header().Set("ETag", etag)
	http.ServeContent(&faultyResponse{ResponseWriter: w, out: out}, r, "", modTime, bytes.NewReader(data))
}

// faultyResponse routes a body through a faultyWriter.
type faultyResponse struct {
	http.ResponseWriter
	out io.Writer
}

func (f *faultyResponse) Write(p []byte) (int, error) { return f.out.Write(p) }

// faultyWriter sends its fault's first bytes, then misbehaves.
type faultyWriter struct {
	w     http.ResponseWriter
	s     *imageServer
	r     *http.Request
	fault *fault
	left  int64
}

func (f *faultyWriter) Write(p []byte) (int, error) {
	if f.fault.kind == "trickle" {
		return f.trickle(p)
	}
	if int64(len(p)) <= f.left {
		f.left -= int64(len(p))
		return f.w.Write(p)
	}
	_, _ = f.w.Write(p[:f.left])
	f.left = 0
	http.NewResponseController(f.w).Flush()
	switch f.fault.kind {
	case "stall":
		select {
		case <-f.r.Context().Done():
		case <-f.s.quit:
		}
	case "die":
		f.s.srv.Listener.Close()
	}
	panic(http.ErrAbortHandler) // drops the connection
}

// trickle sends 32 KiB every 50ms.
func (f *faultyWriter) trickle(p []byte) (int, error) {
	sent := 0
	for sent < len(p) {
		n, err := f.w.Write(p[sent:min(len(p), sent+32<<10)])
		sent += n
		if err != nil {
			return sent, err
		}
		http.NewResponseController(f.w).Flush()
		select {
		case <-time.After(50 * time.Millisecond):
		case <-f.r.Context().Done():
			return sent, f.r.Context().Err()
		}
	}
	return sent, nil
}

// newDisk makes a sparse file of size bytes standing in for a disk,
// filled with pattern when pattern is not 0 (to show what gets zeroed).
func newDisk(t *testing.T, size int64, pattern byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if pattern != 0 {
		if _, err := f.Write(bytes.Repeat([]byte{pattern}, int(size))); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

func readDisk(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testImage is size bytes of random, zero and compressible stretches.
func testImage(size int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, size)
	for off := 0; off < size; {
		n := min(size-off, 64<<10+rng.IntN(512<<10))
		switch rng.IntN(3) {
		case 0:
			for i := off; i < off+n; i++ {
				b[i] = byte(rng.Uint32())
			}
		case 1: // zeros already
		case 2:
			line := fmt.Sprintf("line %d of a compressible stretch\n", off)
			for i := off; i < off+n; i++ {
				b[i] = line[(i-off)%len(line)]
			}
		}
		off += n
	}
	b[0] = 0xeb // not a magic of anything: a boot sector's jump
	return b
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func sha512Hex(b []byte) string { s := sha512.Sum512(b); return hex.EncodeToString(s[:]) }
func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// testOptions are short timeouts and the server's client.
func testOptions(s *imageServer) Options {
	return Options{
		Client:        s.srv.Client(),
		Log:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		StallTimeout:  20 * time.Second, // long: the tests that stall set their own
		HeaderTimeout: 20 * time.Second,
		Retries:       3,
		RetryDelay:    5 * time.Millisecond,
	}
}

// wantDisk checks the disk starts with want and, when the rest should be
// untouched, that the rest still holds pattern.
func wantDisk(t *testing.T, disk string, want []byte, pattern byte) {
	t.Helper()
	got := readDisk(t, disk)
	if !bytes.Equal(got[:len(want)], want) {
		i := 0
		for i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("disk differs from the image at byte %d of %d", i, len(want))
	}
	for i, c := range got[len(want):] {
		if c != pattern {
			t.Fatalf("disk byte %d past the image is %#x, want %#x", len(want)+i, c, pattern)
		}
	}
}

// wantZeros checks the disk's first n bytes are zero.
func wantZeros(t *testing.T, disk string, n int) {
	t.Helper()
	got := readDisk(t, disk)
	for i, c := range got[:n] {
		if c != 0 {
			t.Fatalf("disk byte %d is %#x after the wipe, want 0", i, c)
		}
	}
}

// qemuImg runs qemu-img; without it the test skips, except in CI.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("qemu-img is missing (Debian package qemu-utils); CI must install it")
		}
		t.Skip("qemu-img is missing (apt-get install qemu-utils)")
	}
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// qcow2Of converts raw to qcow2 with extra qemu-img convert options.
func qcow2Of(t *testing.T, raw []byte, opts ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.raw"), filepath.Join(dir, "out.qcow2")
	if err := os.WriteFile(in, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	qemuImg(t, append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, opts...), in, out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkNoLeak fails if a goroutine of this package (not of its tests)
// outlives the call it belongs to. Write waits for its goroutines, so only
// timer callbacks finishing may need the moment the loop allows.
func checkNoLeak(t *testing.T) {
	t.Helper()
	var leaked string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		leaked = ""
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if ownGoroutine(g) {
				leaked += g + "\n\n"
			}
		}
		if leaked == "" {
			return
		}
	}
	t.Fatalf("goroutines of imagewrite still running:\n%s", leaked)
}

func ownGoroutine(stack string) bool {
	lines := strings.Split(stack, "\n")
	for i := 1; i+1 < len(lines); i += 2 {
		if strings.Contains(lines[i], "agent-api/imagewrite.") && !strings.Contains(lines[i+1], "_test.go") {
			return true
		}
	}
	return false
}
