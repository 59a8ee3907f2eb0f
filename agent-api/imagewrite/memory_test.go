package imagewrite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
)

// patternFile is a large file that takes no memory: one random block
// repeated.
type patternFile struct {
	block []byte
	size  int64
	off   int64
}

func newPatternFile(size int64) *patternFile {
	return &patternFile{block: testImage(1<<20+4093, 40), size: size} // odd length: no two blocks align
}

func (p *patternFile) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.size-p.off)]
	n := 0
	for n < len(b) {
		n += copy(b[n:], p.block[(p.off+int64(n))%int64(len(p.block)):])
	}
	p.off += int64(n)
	return n, nil
}

func (p *patternFile) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += p.off
	case io.SeekEnd:
		off += p.size
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	p.off = off
	return off, nil
}

// peakHeap samples the heap in use until stop is called, which returns
// the highest value seen.
func peakHeap() (stop func() uint64) {
	var (
		peak uint64
		wg   sync.WaitGroup
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// TestMemoryStaysBounded writes a 1 GiB raw image and a 256 MiB zstd one
// and checks that neither was staged in memory: everything allocated
// during the write, and the heap's peak, stay within a few tens of MiB.
func TestMemoryStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 1.25 GiB")
	}
	const limit = 48 << 20
	raw := func() io.ReadSeeker { return newPatternFile(1 << 30) }
	zstdFile := zstdOf(t, must(io.ReadAll(newPatternFile(256<<20))))
	compressed := func() io.ReadSeeker { return bytes.NewReader(zstdFile) }
	for _, tc := range []struct {
		name    string
		file    func() io.ReadSeeker
		written int64
	}{
		{"raw 1 GiB", raw, 1 << 30},
		{"zstd 256 MiB", compressed, 256 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sum := sha256.New()
			if _, err := io.Copy(sum, tc.file()); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.ServeContent(w, r, "", time.Time{}, tc.file())
			}))
			defer srv.Close()
			disk := newDisk(t, tc.written+1<<20, 0)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			stop := peakHeap()
			res, err := Write(context.Background(), Source{URL: srv.URL + "/image", Checksum: hex.EncodeToString(sum.Sum(nil))},
				disk, Options{Client: srv.Client()})
			peak := stop()
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if res.BytesWritten != tc.written {
				t.Fatalf("wrote %d bytes, want %d", res.BytesWritten, tc.written)
			}
			allocated := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %.1f MiB in all, heap peak %.1f MiB (%.1f MiB before)",
				float64(allocated)/(1<<20), float64(peak)/(1<<20), float64(before.HeapInuse)/(1<<20))
			if allocated > limit {
				t.Errorf("allocated %d bytes while writing %d: the image is being staged", allocated, tc.written)
			}
			if peak > before.HeapInuse+limit {
				t.Errorf("heap peaked at %d bytes (from %d)", peak, before.HeapInuse)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
