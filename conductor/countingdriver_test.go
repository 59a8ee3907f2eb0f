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
// calls that overlap on one node, and can be told to fail or hang. It
// provisions with an agent (it is no AgentlessProvisioner), and logs every
// change it makes to a node (power actions, boot devices) in order.
type countingDriver struct {
	mu       sync.Mutex
	power    map[string]drivers.PowerState
	sets     map[string]int
	reads    map[string]int
	changes  map[string][]string // per node: "rebooting", "boot pxe", "boot disk persistent"...
	failing  map[string]bool     // per node and change ("<uuid> rebooting"): changes that fail
	hanging  map[string]bool     // per node and change: changes that hang until their context ends
	inFlight map[string]int
	overlaps atomic.Int32
	latency  time.Duration
	failRead atomic.Bool
}

func newCountingDriver(latency time.Duration) *countingDriver {
	return &countingDriver{power: map[string]drivers.PowerState{}, sets: map[string]int{}, reads: map[string]int{},
		changes: map[string][]string{}, failing: map[string]bool{}, hanging: map[string]bool{}, inFlight: map[string]int{}, latency: latency}
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
	hang := d.hanging[n.UUID+" "+string(a)]
	d.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failing[n.UUID+" "+string(a)] {
		return errors.New("BMC refused (test)")
	}
	d.sets[n.UUID]++
	d.changes[n.UUID] = append(d.changes[n.UUID], string(a))
	d.power[n.UUID] = map[drivers.PowerAction]drivers.PowerState{
		drivers.ActionPowerOn: drivers.PowerOn, drivers.ActionPowerOff: drivers.PowerOff, drivers.ActionReboot: drivers.PowerOn,
	}[a]
	return nil
}

// SetBootDevice implements drivers.BootDeviceSetter.
func (d *countingDriver) SetBootDevice(ctx context.Context, n drivers.Node, dev drivers.BootDevice, persistent bool) error {
	d.enter(n.UUID)
	defer d.leave(n.UUID)
	if err := d.wait(ctx); err != nil {
		return err
	}
	change := "boot " + string(dev)
	if persistent {
		change += " persistent"
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failing[n.UUID+" "+change] {
		return errors.New("BMC refused (test)")
	}
	d.changes[n.UUID] = append(d.changes[n.UUID], change)
	return nil
}

// fail makes a change of a node ("rebooting", "boot disk persistent"...) fail
// from now on.
func (d *countingDriver) fail(uuid, change string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failing[uuid+" "+change] = true
}

// hang makes a power change of a node ("rebooting"...) hang from now on,
// until the caller's context ends.
func (d *countingDriver) hang(uuid, change string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hanging[uuid+" "+change] = true
}

// changesOf returns the changes made to a node, in order, and forgets them.
func (d *countingDriver) changesOf(uuid string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.changes[uuid]
	delete(d.changes, uuid)
	return out
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
