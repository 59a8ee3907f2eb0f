package e2e_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/agent-api/agent"
)

// BenchmarkFleetDeploy deploys 1,000 nodes of the fake driver at once, each
// with a simulated agent (one process runs them all) writing a 1 MiB image
// to its sparse disk file: deploys per minute, time until all are active,
// and the peak memory of each program. The nodes start available; the
// operator's deploy requests are sent 32 at a time.
func BenchmarkFleetDeploy(b *testing.B) {
	const machines = 1000
	for range b.N {
		benchFleet(b, machines)
	}
}

func benchFleet(b *testing.B, machines int) {
	s := newStack(b, stackOptions{env: []string{"FERRIC_AGENT_CHECKIN_INTERVAL=2s", "FERRIC_OPERATOR_WORKERS=32", "FERRIC_AGENT_WORKERS=32"}})
	ctx := context.Background()

	// The image, served to every agent.
	im := newImages(b)
	raw := make([]byte, 1<<20)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(im.dir, "fleet.raw"), raw, 0o644); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	imageURL, checksum := im.srv.URL+"/fleet.raw", "sha256:"+hex.EncodeToString(sum[:])

	dir := b.TempDir()
	cfg := agent.FleetConfig{
		Agent:    agent.Config{APIURL: s.agentURL, Version: "ferric-agent fleet", MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second},
		Machines: machines, First: 1000, Dir: dir, DiskSize: diskSize,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	hc, err := agent.NewHTTPClient("", 256)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Client = hc
	profiles, err := agent.FleetProfiles(cfg)
	if err != nil {
		b.Fatal(err)
	}

	// Nodes and ports through the API, then made available directly: the
	// benchmark measures deploys.
	ids := make([]string, machines)
	parallel(machines, 32, func(i int) {
		m, err := profiles[i].Machine()
		if err != nil {
			b.Error(err)
			return
		}
		n, err := nodes.Create(ctx, s.client, nodes.CreateOpts{Name: fmt.Sprintf("fleet-%04d", i), Driver: "fake",
			DriverInfo: map[string]any{"fake_agent": true}}).Extract()
		if err != nil {
			b.Error(err)
			return
		}
		pxe := true
		if _, err := ports.Create(ctx, s.client, ports.CreateOpts{NodeUUID: n.UUID, Address: m.Inventory.Interfaces[0].MACAddress, PXEEnabled: &pxe}).Extract(); err != nil {
			b.Error(err)
			return
		}
		if _, err := nodes.Update(ctx, s.client, n.UUID, nodes.UpdateOpts{
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: imageURL},
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_checksum", Value: checksum},
		}).Extract(); err != nil {
			b.Error(err)
		}
		ids[i] = n.UUID
	})
	if b.Failed() {
		b.FailNow()
	}
	db := sqlx.MustOpen("postgres", s.dbURL)
	defer db.Close()
	if _, err := db.Exec(`UPDATE nodes SET provision_state = 'available', target_provision_state = NULL`); err != nil {
		b.Fatal(err)
	}

	fleetCtx, stopFleet := context.WithCancel(ctx)
	fleetDone := make(chan struct{})
	go func() { defer close(fleetDone); _ = agent.RunFleet(fleetCtx, cfg, profiles) }()
	defer func() { stopFleet(); <-fleetDone }()
	var peakHeap atomic.Uint64
	sampler := make(chan struct{})
	go func() { // sampled until the deploys are done
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			select {
			case <-sampler:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	b.ResetTimer()
	start := time.Now()
	var refused atomic.Int64
	parallel(machines, 32, func(i int) {
		if err := nodes.ChangeProvisionState(ctx, s.client, ids[i], nodes.ProvisionStateOpts{Target: nodes.TargetActive}).ExtractErr(); err != nil {
			refused.Add(1)
			b.Errorf("deploy %s: %v", ids[i], err)
		}
	})
	requested := time.Since(start)
	var active, failed int
	deadline := time.Now().Add(15 * time.Minute)
	for time.Now().Before(deadline) {
		if err := db.Get(&active, `SELECT count(*) FROM nodes WHERE provision_state = 'active'`); err != nil {
			b.Fatal(err)
		}
		if err := db.Get(&failed, `SELECT count(*) FROM nodes WHERE provision_state LIKE '%failed'`); err != nil {
			b.Fatal(err)
		}
		if active+failed == machines {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	allActive := time.Since(start)
	b.StopTimer()
	close(sampler)
	if active != machines {
		b.Fatalf("%d of %d nodes active, %d failed, after %v", active, machines, failed, allActive)
	}
	b.ReportMetric(float64(machines)/allActive.Minutes(), "deploys/min")
	b.ReportMetric(allActive.Seconds(), "s_until_all_active")
	b.ReportMetric(requested.Seconds(), "s_to_request")
	for _, name := range []string{"ferric-public-api", "ferric-agent-api", "ferric-conductor"} {
		b.ReportMetric(s.peakRSS(name)/(1<<20), "MB_peak_rss_"+strings.TrimPrefix(name, "ferric-"))
	}
	b.ReportMetric(float64(peakHeap.Load())/(1<<20), "MB_peak_heap_fleet")
	b.ReportMetric(selfPeakRSS()/(1<<20), "MB_peak_rss_fleet_process")
}

// parallel runs f(0..n-1) with at most width at once.
func parallel(n, width int, f func(int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range width {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// peakRSS is a program's peak resident memory (VmHWM), in bytes.
func (s *stack) peakRSS(name string) float64 {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return 0
	}
	return vmHWM(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
}

func selfPeakRSS() float64 { return vmHWM("/proc/self/status") }

func vmHWM(path string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb * 1024
			}
		}
	}
	return 0
}
