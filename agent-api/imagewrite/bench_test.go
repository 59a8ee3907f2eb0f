package imagewrite

import (
	"context"
	"encoding/hex"
	"flag"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var (
	benchSize   = flag.Int64("imagewrite.benchsize", 2<<30, "bytes of the raw image BenchmarkWriteRaw2GiB writes")
	benchAlgo   = flag.String("imagewrite.benchalgo", "sha256", "checksum algorithm of BenchmarkWriteRaw2GiB (sha512 is Glance's default)")
	benchSettle = flag.Duration("imagewrite.benchsettle", 5*time.Second, "pause before each measured run of BenchmarkWriteRaw2GiB")
)

// BenchmarkWriteRaw2GiB writes a raw image of random bytes, served over
// HTTP on 127.0.0.1 from a file, onto a file on the same filesystem, and
// copies the same file with dd bs=4M conv=fsync for comparison. Each
// iteration runs both (alternating which goes first); the figures are the
// medians over the iterations (-benchtime 5x for five).
func BenchmarkWriteRaw2GiB(b *testing.B) {
	if testing.Short() {
		b.Skip("writes gigabytes")
	}
	dd, err := exec.LookPath("dd")
	if err != nil {
		b.Skip("dd is missing")
	}
	hashNew, ok := hashes[*benchAlgo]
	if !ok {
		b.Fatalf("unknown algorithm %q", *benchAlgo)
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "image.raw")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	h := hashNew()
	buf := make([]byte, 4<<20)
	for left := *benchSize; left > 0; left -= int64(len(buf)) {
		chunk := buf[:min(left, int64(len(buf)))]
		_, _ = rng.Read(chunk)
		h.Write(chunk)
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	// Flushed first, so that neither side pays for the source's writeback.
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	checksum := *benchAlgo + ":" + hex.EncodeToString(h.Sum(nil))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()

	mbps := func(d time.Duration) float64 { return float64(*benchSize) / 1e6 / d.Seconds() }
	ours := func() float64 {
		disk := filepath.Join(dir, "ours.disk")
		defer os.Remove(disk)
		if err := os.WriteFile(disk, nil, 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.Truncate(disk, *benchSize); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := Write(context.Background(), Source{URL: srv.URL + "/image.raw", Checksum: checksum}, disk,
			Options{Client: srv.Client()}); err != nil {
			b.Fatal(err)
		}
		return mbps(time.Since(start))
	}
	viaDD := func() float64 {
		disk := filepath.Join(dir, "dd.disk")
		defer os.Remove(disk)
		start := time.Now()
		if out, err := exec.Command(dd, "if="+src, "of="+disk, "bs=4M", "conv=fsync").CombinedOutput(); err != nil {
			b.Fatalf("dd: %v\n%s", err, out)
		}
		return mbps(time.Since(start))
	}

	// settle lets the kernel (and a VM's host) finish with the previous
	// run's pages, so that each run starts from the same state.
	settled := func(run func() float64) float64 {
		_ = exec.Command("sync").Run()
		time.Sleep(*benchSettle)
		return run()
	}
	var oursMBps, ddMBps, ratios []float64
	b.ResetTimer()
	for i := range b.N {
		var o, d float64
		if i%2 == 0 {
			o, d = settled(ours), settled(viaDD)
		} else {
			d, o = settled(viaDD), settled(ours)
		}
		b.Logf("run %d: imagewrite %.0f MB/s, dd %.0f MB/s, ratio %.2f", i+1, o, d, o/d)
		oursMBps, ddMBps, ratios = append(oursMBps, o), append(ddMBps, d), append(ratios, o/d)
	}
	b.StopTimer()
	b.ReportMetric(median(oursMBps), "MB/s")
	b.ReportMetric(median(ddMBps), "dd_MB/s")
	b.ReportMetric(median(ratios), "ratio_to_dd")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
