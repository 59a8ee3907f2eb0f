package redfish

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

// BenchmarkPowerStateRead100BMCs reads the power state of 100 simulated BMCs
// on 127.0.0.1, each answering every request after 50 ms, with at most 16
// or 64 reads in flight. One iteration reads every BMC once, on connections
// kept from a warm-up round. It reports reads per second and the median
// latency of one read. Run it with, e.g.:
//
//	go test -run '^$' -bench PowerStateRead100BMCs -benchtime 3x ./drivers/redfish/
func BenchmarkPowerStateRead100BMCs(b *testing.B) {
	const bmcs, latency = 100, 50 * time.Millisecond
	nodes := make([]drivers.Node, bmcs)
	for i := range nodes {
		bmc := newBMC(b, redfishsim.Options{Latency: latency, InitialPower: []string{"On", "Off"}[i%2]})
		nodes[i] = bmc.node(nil)
		nodes[i].Name = fmt.Sprintf("bench-%03d", i)
	}
	for _, concurrency := range []int{16, 64} {
		b.Run(fmt.Sprintf("concurrency=%d", concurrency), func(b *testing.B) {
			d, _ := newDriver(b, Options{})
			readAll(b, d, nodes, concurrency) // warm-up: dial every BMC once

			var latencies []time.Duration
			began := time.Now()
			for b.Loop() {
				latencies = append(latencies, readAll(b, d, nodes, concurrency)...)
			}
			elapsed := time.Since(began)
			b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "reads/s")
			b.ReportMetric(float64(median(latencies))/float64(time.Millisecond), "ms/read-p50")
		})
	}
}

// readAll reads every node's power state with at most concurrency reads in
// flight and returns each read's latency.
func readAll(b *testing.B, d *Driver, nodes []drivers.Node, concurrency int) []time.Duration {
	work := make(chan drivers.Node)
	latencies := make(chan time.Duration, len(nodes))
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for n := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				began := time.Now()
				_, err := d.PowerState(ctx, n)
				latencies <- time.Since(began)
				cancel()
				if err != nil {
					b.Error(err)
				}
			}
		})
	}
	for _, n := range nodes {
		work <- n
	}
	close(work)
	wg.Wait()
	close(latencies)
	out := make([]time.Duration, 0, len(nodes))
	for l := range latencies {
		out = append(out, l)
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
