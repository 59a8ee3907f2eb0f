package syncbuf_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/ferric-metal/ferric/shared/syncbuf"
)

// TestConcurrentWrites: writes from many goroutines all land, whole, while
// the buffer is read (run with -race).
func TestConcurrentWrites(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("line\n"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "line\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}
