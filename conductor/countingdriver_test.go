package conductor_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferric-metal/ferric/drivers"
)

// countingDriver is a test driver that counts every call per node, detects
// calls that overlap on one node, and can be told to fail or hang.
type countingDriver struct {
	mu       sync.Mutex
	power    map[string]drivers.PowerState
	sets     map[string]int
	reads    map[string]int
	inFlight map[string]int
	overlaps atomic.Int32
	latency  time.Duration
	failRead atomic.Bool
}

func newCountingDriver(latency time.Duration) *countingDriver {
	return &countingDriver{power: map[string]drivers.PowerState{}, sets: map[string]int{}, reads: map[string]int{},
		inFlight: map[string]int{}, latency: latency}
}

func (d *countingDriver) Name() string                      { return "counting" }
func (d *countingDriver) Description() string               { return "test driver" }
func (d *countingDriver) Properties() []drivers.Property    { return nil }
func (d *countingDriver) ValidateInfo(map[string]any) error { return nil }

func (d *countingDriver) enter(uuid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight[uuid]++
	if d.inFlight[uuid] > 1 {
		d.overlaps.Add(1)
	}
}

func (d *countingDriver) leave(uuid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight[uuid]--
}

func (d *countingDriver) wait(ctx context.Context) error {
	t := time.NewTimer(d.latency)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (d *countingDriver) PowerState(ctx context.Context, n drivers.Node) (drivers.PowerState, error) {
	d.enter(n.UUID)
	defer d.leave(n.UUID)
	if err := d.wait(ctx); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads[n.UUID]++
	if d.failRead.Load() {
		return "", errors.New("BMC unreachable (test)")
	}
	if p, ok := d.power[n.UUID]; ok {
		return p, nil
	}
	return drivers.PowerOff, nil
}

func (d *countingDriver) SetPowerState(ctx context.Context, n drivers.Node, a drivers.PowerAction, _ time.Duration) error {
	d.enter(n.UUID)
	defer d.leave(n.UUID)
	if err := d.wait(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sets[n.UUID]++
	d.power[n.UUID] = map[drivers.PowerAction]drivers.PowerState{
		drivers.ActionPowerOn: drivers.PowerOn, drivers.ActionPowerOff: drivers.PowerOff, drivers.ActionReboot: drivers.PowerOn,
	}[a]
	return nil
}

func (d *countingDriver) setPower(uuid string, p drivers.PowerState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.power[uuid] = p
}

func (d *countingDriver) counts() (sets, reads map[string]int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sets, reads = map[string]int{}, map[string]int{}
	for k, v := range d.sets {
		sets[k] = v
	}
	for k, v := range d.reads {
		reads[k] = v
	}
	return sets, reads
}
