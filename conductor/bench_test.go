package conductor_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/fake"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

func benchConductors(b *testing.B, db *sqlx.DB, n int) []*conductor.Conductor {
	reg := drivers.NewRegistry(fake.New())
	if err := reg.Enable([]string{"fake"}); err != nil {
		b.Fatal(err)
	}
	var cs []*conductor.Conductor
	for i := range n {
		cs = append(cs, conductor.New(db, reg, quiet, conductor.Options{Name: fmt.Sprintf("bench-%d", i)}))
	}
	return cs
}

func seedNodes(b *testing.B, db *sqlx.DB, count int, driverInfo string) {
	b.Helper()
	if _, err := db.Exec(`INSERT INTO nodes (uuid, name, driver, driver_info, provision_state, power_state)
		SELECT gen_random_uuid(), 'node-' || i, 'fake', $2::jsonb, 'available', 'power off'
		FROM generate_series(1, $1) i`, count, driverInfo); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTaskThroughput measures durable tasks completed per second: 2,000
// power-on tasks on instant fake nodes, run by 1 or 2 conductors with 16
// operator workers each. Each task is claimed, locks its node, calls the
// driver, writes the result and its history, and releases the lock.
func BenchmarkTaskThroughput(b *testing.B) {
	const tasks = 2000
	for _, conductors := range []int{1, 2} {
		b.Run(fmt.Sprintf("conductors=%d", conductors), func(b *testing.B) {
			db := pgtest.NewDB(b)
			seedNodes(b, db, tasks, `{}`)
			var total time.Duration
			for range b.N {
				if _, err := db.Exec(`DELETE FROM tasks; INSERT INTO tasks (kind, pool, node_id, driver, args, max_attempts, timeout_ms)
					SELECT 'power', 'operator', id, 'fake', '{"action": "power on"}', 3, 60000 FROM nodes`); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				start := time.Now()
				for _, c := range benchConductors(b, db, conductors) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_ = c.RunWorkers(ctx, conductor.WorkerConfig{Pools: map[string]int{conductor.PoolOperator: 16}, PollInterval: 20 * time.Millisecond})
					}()
				}
				for {
					var open int
					if err := db.Get(&open, `SELECT count(*) FROM tasks WHERE state <> 'done'`); err != nil {
						b.Fatal(err)
					}
					if open == 0 {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				total += time.Since(start)
				cancel()
				wg.Wait()
			}
			b.ReportMetric(float64(tasks*b.N)/total.Seconds(), "tasks/s")
		})
	}
}

// BenchmarkPowerSyncRound measures one power sync round over 10,000 fake
// nodes whose BMC answers in 50 ms, shared by 1 or 2 conductors with 64
// reads in flight each. The floor is nodes x latency / (conductors x 64):
// 7.8 s for one conductor, 3.9 s for two.
func BenchmarkPowerSyncRound(b *testing.B) {
	const nodes, workers = 10000, 64
	for _, conductors := range []int{1, 2} {
		b.Run(fmt.Sprintf("nodes=%d/conductors=%d", nodes, conductors), func(b *testing.B) {
			db := pgtest.NewDB(b)
			seedNodes(b, db, nodes, `{"fake_latency": "50ms"}`)
			cs := benchConductors(b, db, conductors)
			cfg := conductor.PeriodicConfig{PowerSyncInterval: time.Hour, PowerSyncWorkers: workers, PowerSyncTimeout: 10 * time.Second}
			var total time.Duration
			read := 0
			for range b.N {
				if _, err := db.Exec(`UPDATE nodes SET power_sync_due_at = now() - interval '1 second'`); err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				var mu sync.Mutex
				start := time.Now()
				for _, c := range cs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						st, err := c.SyncPowerStates(context.Background(), cfg)
						if err != nil {
							b.Error(err)
						}
						mu.Lock()
						read += st.Read
						mu.Unlock()
					}()
				}
				wg.Wait()
				total += time.Since(start)
			}
			if read != nodes*b.N {
				b.Fatalf("read %d nodes, want %d", read, nodes*b.N)
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/round")
			b.ReportMetric(float64(read)/total.Seconds(), "reads/s")
		})
	}
}
