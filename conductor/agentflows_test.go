package conductor_test

// The flows through a deploy agent, end to end below the HTTP layer: an
// operator's request, the conductor's tasks on the (counting) driver, and a
// simulated agent looking up and checking in through the agent side
// (conductor/agents), all on one real database.

import (
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/agents"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/token"
)

var agentKeys = func() *token.Keys {
	k, err := token.ParseKeys("ag1 " + strings.Repeat("QUJD", 11))
	if err != nil {
		panic(err)
	}
	return k
}()

// agentSide returns the agent side of c, as ferric-agent-api runs it.
func (e *env) agentSide(c *conductor.Conductor) *agents.Agents {
	e.t.Helper()
	side, err := agents.New(c, agents.Options{Keys: agentKeys, Issuer: "ferric-test"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { side.Close() })
	return side
}

// countedNode creates a node of the counting driver with a port of mac,
// placed in state (set straight in the database) with the power on.
func (e *env) countedNode(c *conductor.Conductor, drv *countingDriver, name, mac, state string, instanceInfo map[string]any) *store.Node {
	e.t.Helper()
	ctx := context.Background()
	n, err := c.CreateNode(ctx, conductor.NodeSpec{Name: &name, Driver: "counting"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := c.CreatePort(ctx, conductor.PortSpec{NodeIdent: n.UUID, Address: mac}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.db.Exec(`UPDATE nodes SET provision_state = $2, power_state = 'power on', instance_info = $3,
		properties = '{"root_device": {"size": ">= 100"}}' WHERE id = $1`, n.ID, state, store.JSONObject(instanceInfo)); err != nil {
		e.t.Fatal(err)
	}
	drv.setPower(n.UUID, drivers.PowerOn)
	return e.get(n.UUID)
}

// simAgent is a deploy agent on one machine, driven by the test.
type simAgent struct {
	t    *testing.T
	side *agents.Agents
	mac  string
	id   *agents.AgentIdentity
	tok  string
}

const agentVersion = "ferric-agent 1.0"

var agentSource = netip.MustParseAddr("10.20.0.15")

// lookup looks the machine up and keeps the token revealed.
func (a *simAgent) lookup() {
	a.t.Helper()
	res, err := a.side.Lookup(context.Background(), agents.LookupRequest{MACs: []string{a.mac}, Source: agentSource})
	if err != nil {
		a.t.Fatalf("lookup: %v", err)
	}
	if res.Token == "" {
		a.t.Fatal("lookup revealed no token")
	}
	a.tok = res.Token
	if a.id, err = a.side.AuthenticateAgent(res.Token); err != nil {
		a.t.Fatal(err)
	}
}

func (a *simAgent) checkinErr(name, status, reason string) (*agents.Instruction, error) {
	req := agents.CheckinRequest{AgentVersion: agentVersion, Status: agents.StatusIdle, Source: agentSource}
	if name != "" {
		req.LastCommand = &agents.CommandResult{Name: name, Status: status, Error: reason}
	}
	return a.side.Checkin(context.Background(), a.id, req)
}

// checkin reports the last command (name "" for none) and returns what to
// do next.
func (a *simAgent) checkin(name, status, reason string) *agents.Instruction {
	a.t.Helper()
	in, err := a.checkinErr(name, status, reason)
	if err != nil {
		a.t.Fatalf("checkin (%s %s): %v", name, status, err)
	}
	return in
}

// events returns the node's history, oldest first.
func (e *env) events(n *store.Node) []string {
	e.t.Helper()
	history, err := store.NodeHistory(context.Background(), e.db, n.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, h := range history {
		out = append(out, h.Event)
	}
	return out
}

// countEvents counts the history events that contain part.
func countEvents(events []string, part string) int {
	n := 0
	for _, e := range events {
		if strings.Contains(e, part) {
			n++
		}
	}
	return n
}

func (e *env) provision(c *conductor.Conductor, n *store.Node, target string, steps ...any) {
	e.t.Helper()
	if _, err := c.ChangeProvisionState(context.Background(), n.UUID, conductor.ProvisionRequest{Target: target, CleanSteps: steps, User: "op"}); err != nil {
		e.t.Fatalf("%s: %v", target, err)
	}
}

func (e *env) generation(n *store.Node) int64 {
	e.t.Helper()
	var g int64
	if err := e.db.Get(&g, `SELECT agent_token_generation FROM nodes WHERE id = $1`, n.ID); err != nil {
		e.t.Fatal(err)
	}
	return g
}

var image = map[string]any{"image_source": "http://images.example/os.qcow2", "image_checksum": "sha256:9f86",
	"image_disk_format": "qcow2", "root_gb": 10, "admin_password": "hunter2"}

// TestAgentDeploy: a deploy boots the agent (PXE, reboot), the agent's
// first checkin gets deploy with the image, its success boots the node from
// disk (persistent) with a reboot into active; the history records the
// command given, the running report once and the success.
func TestAgentDeploy(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1")
	e.start(c, conductor.PeriodicConfig{})
	side := e.agentSide(c)
	n := e.countedNode(c, drv, "deployed", "52:54:00:00:01:01", conductor.StateAvailable, image)

	e.provision(c, n, "active")
	e.waitState(n.UUID, conductor.StateWaitCallback)
	if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"boot pxe", "rebooting"}) {
		t.Errorf("booting the agent: %q, want a one-time PXE boot and a reboot", got)
	}
	ag := &simAgent{t: t, side: side, mac: "52:54:00:00:01:01"}
	ag.lookup()
	in := ag.checkin("", "", "")
	want := agentwire.DeployArgs{ImageSource: "http://images.example/os.qcow2", ImageChecksum: "sha256:9f86",
		ImageDiskFormat: "qcow2", RootGB: 10.0, RootDevice: map[string]any{"size": ">= 100"}}
	if in.Action != agents.ActionDeploy || !reflect.DeepEqual(in.Args, want) {
		t.Fatalf("first checkin in wait call-back: %s %#v, want deploy %#v", in.Action, in.Args, want)
	}
	if in := ag.checkin("", "", ""); in.Action != agents.ActionDeploy {
		t.Errorf("checkin before the agent started: %s, want deploy again", in.Action)
	}
	for range 2 {
		if in := ag.checkin(agents.ActionDeploy, agents.CommandRunning, ""); in.Action != agents.ActionWait {
			t.Errorf("while the agent deploys: %s, want wait", in.Action)
		}
	}
	if got := e.get(n.UUID).ProvisionState; got != conductor.StateWaitCallback {
		t.Fatalf("a running report moved the node to %s", got)
	}
	if in := ag.checkin(agents.ActionDeploy, agents.CommandSuccess, ""); in.Action != agents.ActionWait {
		t.Errorf("after success: %s, want wait", in.Action)
	}
	done := e.waitState(n.UUID, conductor.StateActive)
	if done.LastError != nil || done.TargetProvisionState != nil {
		t.Errorf("active with last_error %s target %s", deref(done.LastError), deref(done.TargetProvisionState))
	}
	if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"boot disk persistent", "rebooting"}) {
		t.Errorf("finishing the deploy: %q, want boot from disk (persistent) and a reboot", got)
	}
	if _, err := ag.checkinErr("", "", ""); fault.KindOf(err) != fault.Unauthorized {
		t.Errorf("the agent's token after the final reboot: %v, want revoked", err)
	}
	events := e.events(n)
	for part, want := range map[string]int{
		"Agent given deploy (ferric-agent 1.0 at 10.20.0.15).":            1,
		"Agent reported deploy running (ferric-agent 1.0 at 10.20.0.15).": 1,
		"Agent reported deploy success (ferric-agent 1.0 at 10.20.0.15).": 1,
		"agent called back: wait call-back -> deploying":                  1,
	} {
		if got := countEvents(events, part); got != want {
			t.Errorf("history has %d of %q, want %d:\n%s", got, part, want, strings.Join(events, "\n"))
		}
	}
}

// TestAgentDeployFailures: the agent's failure and each conductor-side step
// that fails end in deploy failed, with a last_error that names the step.
func TestAgentDeployFailures(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1")
	e.start(c, conductor.PeriodicConfig{})
	side := e.agentSide(c)

	for i, tc := range []struct {
		name      string
		fail      string // a driver change that fails once the agent has booted
		report    string // the agent's reason, when it reports failure
		lastError string
	}{
		{name: "agent", report: "write image: checksum mismatch: want sha256:9f86, got sha256:0bad",
			lastError: "Agent reported that deploy failed: write image: checksum mismatch: want sha256:9f86, got sha256:0bad"},
		{name: "boot device", fail: "boot disk persistent", lastError: "deploying failed: set boot device disk: BMC refused (test)"},
		{name: "reboot", fail: "rebooting", lastError: "deploying failed: rebooting: BMC refused (test)"},
	} {
		mac := []string{"52:54:00:00:02:01", "52:54:00:00:02:02", "52:54:00:00:02:03"}[i]
		n := e.countedNode(c, drv, "fails-"+strings.ReplaceAll(tc.name, " ", "-"), mac, conductor.StateAvailable, image)
		e.provision(c, n, "active")
		e.waitState(n.UUID, conductor.StateWaitCallback)
		drv.changesOf(n.UUID)
		if tc.fail != "" {
			drv.fail(n.UUID, tc.fail)
		}
		ag := &simAgent{t: t, side: side, mac: mac}
		ag.lookup()
		ag.checkin("", "", "")
		if tc.report != "" {
			ag.checkin(agents.ActionDeploy, agents.CommandFailed, tc.report)
		} else {
			ag.checkin(agents.ActionDeploy, agents.CommandSuccess, "")
		}
		failed := e.waitState(n.UUID, conductor.StateDeployFailed)
		if deref(failed.LastError) != tc.lastError || deref(failed.TargetProvisionState) != conductor.StateActive {
			t.Errorf("%s: last_error %q target %s, want %q, target active", tc.name, deref(failed.LastError),
				deref(failed.TargetProvisionState), tc.lastError)
		}
		if countEvents(e.events(n), tc.lastError) != 1 {
			t.Errorf("%s: the failure is not in the history: %q", tc.name, e.events(n))
		}
		if tc.report != "" {
			if got := drv.changesOf(n.UUID); len(got) != 0 {
				t.Errorf("%s: the agent's failure made driver changes %q", tc.name, got)
			}
		}
	}
}

// TestUndeployCleansThroughTheAgent: undeploy forgets the instance, powers
// off and boots the agent to clean with the automated defaults
// (erase_devices_metadata, or erase_devices with CleanErase full); the
// agent's success powers the node off into available.
func TestUndeployCleansThroughTheAgent(t *testing.T) {
	t.Parallel()
	for erase, step := range map[string]string{
		conductor.CleanEraseMetadata: agentwire.StepEraseDevicesMetadata,
		conductor.CleanEraseFull:     agentwire.StepEraseDevices,
	} {
		t.Run(erase, func(t *testing.T) {
			t.Parallel()
			drv := newCountingDriver(0)
			e := newEnv(t, drv)
			c := e.conductor("c1", func(o *conductor.Options) { o.CleanErase = erase })
			e.start(c, conductor.PeriodicConfig{})
			side := e.agentSide(c)
			n := e.countedNode(c, drv, "undeployed", "52:54:00:00:03:01", conductor.StateActive, image)
			if _, err := e.db.Exec(`UPDATE nodes SET instance_uuid = gen_random_uuid() WHERE id = $1`, n.ID); err != nil {
				t.Fatal(err)
			}

			e.provision(c, n, "deleted")
			waiting := e.waitState(n.UUID, conductor.StateCleanWait)
			if len(waiting.InstanceInfo) != 0 || waiting.InstanceUUID != nil || deref(waiting.TargetProvisionState) != conductor.StateAvailable {
				t.Errorf("after tear-down: instance_info %v, instance_uuid %s, target %s; want the instance forgotten, target available",
					waiting.InstanceInfo, deref(waiting.InstanceUUID), deref(waiting.TargetProvisionState))
			}
			if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"power off", "boot pxe", "rebooting"}) {
				t.Errorf("tear-down and agent boot: %q", got)
			}
			ag := &simAgent{t: t, side: side, mac: "52:54:00:00:03:01"}
			ag.lookup()
			in := ag.checkin("", "", "")
			want := agentwire.CleanArgs{CleanSteps: []agentwire.CleanStep{{Interface: "deploy", Step: step}}}
			if in.Action != agents.ActionClean || !reflect.DeepEqual(in.Args, want) {
				t.Fatalf("in clean wait: %s %#v, want clean %#v", in.Action, in.Args, want)
			}
			ag.checkin(agents.ActionClean, agents.CommandRunning, "")
			ag.checkin(agents.ActionClean, agents.CommandSuccess, "")
			done := e.waitState(n.UUID, conductor.StateAvailable)
			if done.TargetProvisionState != nil || done.LastError != nil || deref(done.PowerState) != "power off" {
				t.Errorf("available: target %s last_error %s power %s", deref(done.TargetProvisionState), deref(done.LastError), deref(done.PowerState))
			}
			if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"power off"}) {
				t.Errorf("ending the clean: %q, want a power off", got)
			}
			if countEvents(e.events(n), "Agent given clean") != 1 {
				t.Errorf("history: %q", e.events(n))
			}
		})
	}
}

// TestAutomatedCleanOff: with automated cleaning off, undeploy and provide
// power the node off and go on without booting an agent; a manual clean
// still does.
func TestAutomatedCleanOff(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1", func(o *conductor.Options) { o.SkipAutomatedClean = true })
	e.start(c, conductor.PeriodicConfig{})
	n := e.countedNode(c, drv, "uncleaned", "52:54:00:00:04:01", conductor.StateActive, image)

	e.provision(c, n, "deleted")
	e.waitState(n.UUID, conductor.StateAvailable)
	if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"power off", "power off"}) {
		t.Errorf("undeploy without automated clean: %q, want power offs only", got)
	}
	e.provision(c, n, "manage")
	e.waitState(n.UUID, conductor.StateManageable)
	e.provision(c, n, "provide")
	e.waitState(n.UUID, conductor.StateAvailable)
	if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"power off"}) {
		t.Errorf("provide without automated clean: %q, want a power off only", got)
	}
	if events := e.events(n); countEvents(events, "clean wait") != 0 {
		t.Errorf("a clean waited for an agent: %q", events)
	}
	e.provision(c, n, "manage")
	e.waitState(n.UUID, conductor.StateManageable)
	e.provision(c, n, "clean", map[string]any{"interface": "deploy", "step": "erase_devices"})
	e.waitState(n.UUID, conductor.StateCleanWait)
	if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"boot pxe", "rebooting"}) {
		t.Errorf("manual clean: %q, want the agent booted", got)
	}
}

// TestManualCleanStepsValidated: a manual clean takes only the steps the
// agent implements, refused as Ironic refuses them (400) before anything
// changes.
func TestManualCleanStepsValidated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.conductor("c1")
	e.register("c1")
	n := e.node(c, "cleaned", map[string]any{"fake_agent": true})
	if _, err := e.db.Exec(`UPDATE nodes SET provision_state = 'manageable' WHERE id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		step any
		want string
	}{
		{map[string]any{"interface": "deploy", "step": "erase_everything"},
			"node does not support this clean step: {'interface': 'deploy', 'step': 'erase_everything'}"},
		{map[string]any{"interface": "bios", "step": "erase_devices"},
			"node does not support this clean step: {'interface': 'bios', 'step': 'erase_devices'}"},
		{map[string]any{"step": "erase_devices"}, "Invalid clean_steps: 'interface' is a required property."},
		{map[string]any{"interface": "deploy", "step": "erase_devices", "force": true},
			"Invalid clean_steps: Additional properties are not allowed ('force' was unexpected)."},
		{"erase_devices", `Invalid clean_steps: "erase_devices" is not of type 'object'.`},
		{map[string]any{"interface": "deploy", "step": "erase_devices", "args": []any{1.0}}, "Invalid clean_steps: [1] is not of type 'object'."},
		{map[string]any{"interface": "deploy", "step": "erase_devices", "priority": 1.5}, "priority 1.5 is not a non-negative integer"},
		{map[string]any{"interface": "deploy", "step": 5.0}, "must be non-empty strings"},
	} {
		_, err := c.ChangeProvisionState(ctx, n.UUID, conductor.ProvisionRequest{Target: "clean", CleanSteps: []any{tc.step}})
		if fault.KindOf(err) != fault.Invalid || !strings.Contains(fault.Message(err), tc.want) {
			t.Errorf("steps %v: %v, want 400 %q", tc.step, err, tc.want)
		}
	}
	if got := e.get(n.UUID); got.ProvisionState != conductor.StateManageable || got.TargetProvisionState != nil {
		t.Fatalf("refused cleans moved the node to %s -> %s", got.ProvisionState, deref(got.TargetProvisionState))
	}
	steps := []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}, "priority": 90.0},
		map[string]any{"interface": "deploy", "step": "erase_devices"}}
	if _, err := c.ChangeProvisionState(ctx, n.UUID, conductor.ProvisionRequest{Target: "clean", CleanSteps: steps}); err != nil {
		t.Errorf("the agent's own steps: %v", err)
	}
}

// TestFastTrackDeploy: with fast track, an agent checking in on an
// available node stays up; a deploy then starts on it without a power
// cycle: the same token's next checkin gets deploy, and the only driver
// changes are the final boot from disk and reboot.
func TestFastTrackDeploy(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1", func(o *conductor.Options) { o.FastTrack = true })
	e.start(c, conductor.PeriodicConfig{})
	side := e.agentSide(c)
	n := e.countedNode(c, drv, "fast", "52:54:00:00:05:01", conductor.StateAvailable, image)

	ag := &simAgent{t: t, side: side, mac: "52:54:00:00:05:01"}
	ag.lookup()
	if in := ag.checkin("", "", ""); in.Action != agents.ActionWait {
		t.Fatalf("agent on an available node with fast track: %s, want wait", in.Action)
	}
	generation := e.generation(n)
	e.provision(c, n, "active")
	e.waitState(n.UUID, conductor.StateWaitCallback)
	if got := drv.changesOf(n.UUID); len(got) != 0 {
		t.Errorf("a fast-track deploy changed the machine before the agent's work: %q", got)
	}
	if g := e.generation(n); g != generation {
		t.Errorf("token generation %d -> %d: the fast-track deploy revoked the agent's token", generation, g)
	}
	in := ag.checkin("", "", "")
	if in.Action != agents.ActionDeploy || in.Args.(agentwire.DeployArgs).ImageSource != "http://images.example/os.qcow2" {
		t.Fatalf("the agent's next checkin with its token: %s %v, want deploy", in.Action, in.Args)
	}
	ag.checkin(agents.ActionDeploy, agents.CommandSuccess, "")
	e.waitState(n.UUID, conductor.StateActive)
	if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"boot disk persistent", "rebooting"}) {
		t.Errorf("the fast-track deploy's driver changes: %q, want only the final boot from disk and reboot", got)
	}
	if sets, _ := drv.counts(); sets[n.UUID] != 1 {
		t.Errorf("%d power actions, want the final reboot only", sets[n.UUID])
	}
	if countEvents(e.events(n), "fast track") != 1 || countEvents(e.events(n), "Fast track: no reboot") != 1 {
		t.Errorf("history: %q", e.events(n))
	}
}

// TestFastTrackClean: with fast track, provide on a node whose agent is up
// cleans on that agent without a power cycle and leaves it running, on an
// available node, where a deploy goes on with it too.
func TestFastTrackClean(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1", func(o *conductor.Options) { o.FastTrack = true })
	e.start(c, conductor.PeriodicConfig{})
	side := e.agentSide(c)
	n := e.countedNode(c, drv, "fast-clean", "52:54:00:00:06:01", conductor.StateManageable, image)

	ag := &simAgent{t: t, side: side, mac: "52:54:00:00:06:01"}
	ag.lookup()
	ag.checkin("", "", "")
	e.provision(c, n, "provide")
	e.waitState(n.UUID, conductor.StateCleanWait)
	in := ag.checkin("", "", "")
	if in.Action != agents.ActionClean || len(in.Args.(agentwire.CleanArgs).CleanSteps) != 1 {
		t.Fatalf("the agent's next checkin: %s %v, want clean with the default step", in.Action, in.Args)
	}
	ag.checkin(agents.ActionClean, agents.CommandSuccess, "")
	e.waitState(n.UUID, conductor.StateAvailable)
	if in := ag.checkin(agents.ActionClean, agents.CommandSuccess, ""); in.Action != agents.ActionWait {
		t.Errorf("the agent after its clean: %s, want wait (it stays up)", in.Action)
	}
	if got := drv.changesOf(n.UUID); len(got) != 0 {
		t.Errorf("a fast-track clean changed the machine: %q, want it left on with its agent", got)
	}
	e.provision(c, n, "active")
	e.waitState(n.UUID, conductor.StateWaitCallback)
	if in := ag.checkin(agents.ActionClean, agents.CommandSuccess, ""); in.Action != agents.ActionDeploy {
		t.Errorf("deploy after the fast-track clean: %s, want deploy on the same agent", in.Action)
	}
	if got := drv.changesOf(n.UUID); len(got) != 0 {
		t.Errorf("the deploy after the clean changed the machine: %q", got)
	}
}

// TestFastTrackNeedsARecentAgent: an agent not heard from within the fast
// track timeout is not reused: the deploy boots one as usual, revoking the
// old token.
func TestFastTrackNeedsARecentAgent(t *testing.T) {
	t.Parallel()
	drv := newCountingDriver(0)
	e := newEnv(t, drv)
	c := e.conductor("c1", func(o *conductor.Options) { o.FastTrack, o.FastTrackTimeout = true, time.Minute })
	e.start(c, conductor.PeriodicConfig{})
	side := e.agentSide(c)
	n := e.countedNode(c, drv, "stale", "52:54:00:00:07:01", conductor.StateAvailable, image)

	ag := &simAgent{t: t, side: side, mac: "52:54:00:00:07:01"}
	ag.lookup()
	ag.checkin("", "", "")
	if _, err := e.db.Exec(`UPDATE agent_checkins SET checked_in_at = now() - interval '1 hour' WHERE node_id = $1`, n.ID); err != nil {
		t.Fatal(err)
	}
	e.provision(c, n, "active")
	e.waitState(n.UUID, conductor.StateWaitCallback)
	if got := drv.changesOf(n.UUID); !slices.Equal(got, []string{"boot pxe", "rebooting"}) {
		t.Errorf("deploy with a silent agent: %q, want the agent booted", got)
	}
	if _, err := ag.checkinErr("", "", ""); fault.KindOf(err) != fault.Unauthorized {
		t.Errorf("the silent agent's token: %v, want revoked", err)
	}
}
