// Package redfishsim is an in-process Redfish BMC for tests, benchmarks and
// demos. It speaks the subset of Redfish that Ferric's redfish driver uses:
//
//	/redfish/v1/                               service root (public)
//	/redfish/v1/Systems                        ComputerSystem collection
//	/redfish/v1/Systems/{id}                   PowerState, Boot (GET, PATCH)
//	/redfish/v1/Systems/{id}/Actions/ComputerSystem.Reset
//	/redfish/v1/Systems/{id}/Bios              BIOS Attributes
//	/redfish/v1/Managers/BMC                   the one manager (in /redfish/v1/Managers)
//	/redfish/v1/Managers/BMC/VirtualMedia/Cd   a CD with Insert/EjectMedia
//	/redfish/v1/SessionService/Sessions        optional X-Auth-Token sessions (DELETE logs out)
//
// Every resource except the service root needs HTTP Basic credentials or a
// session token. Power and boot settings are stateful; a one-time boot
// override is used up when the system boots. Options shape the BMC
// (systems, allowed values, delayed power changes, latency) and Inject adds
// faults at run time (error statuses, hangs, garbage JSON, dropped
// connections).
//
// A Simulator is one BMC. The ferric-redfish-sim program serves many, each on
// its own port. Nothing here starts a goroutine: delayed power changes are
// applied lazily when state is next read.
package redfishsim

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Reset types this simulator implements.
var implementedResetTypes = []string{
	"On", "ForceOn", "ForceOff", "GracefulShutdown", "GracefulRestart",
	"ForceRestart", "PowerCycle", "PushPowerButton", "Nmi",
}

// DefaultResetTypes are advertised when Options.ResetTypes is nil.
var DefaultResetTypes = []string{
	"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi", "PushPowerButton",
}

// DefaultBootTargets are advertised when Options.BootTargets is nil.
var DefaultBootTargets = []string{"None", "Pxe", "Hdd", "Cd", "BiosSetup", "UefiHttp"}

// Options shape a simulated BMC. The zero value is a usable BMC with one
// system, credentials admin/password and no SessionService.
type Options struct {
	// Systems is the number of ComputerSystems, with ids "1".."N" (default 1).
	Systems int
	// Username and Password are the accepted credentials, for HTTP Basic
	// auth and session login. Defaults: "admin" and "password".
	Username, Password string
	// SessionService serves /redfish/v1/SessionService. Without it, as on
	// sushy-tools, only Basic auth works.
	SessionService bool
	// MaxSessions bounds open sessions (default 16); a further login gets
	// 503, like a BMC whose session table is full.
	MaxSessions int
	// Latency delays every request (changeable later with SetLatency).
	Latency time.Duration
	// PowerDelay defers every power change by this long (default: at once).
	PowerDelay time.Duration
	// TransitionStates reports PoweringOn/PoweringOff while a delayed power
	// change is pending; otherwise the old state is reported until then.
	TransitionStates bool
	// IgnoreGraceful accepts GracefulShutdown and GracefulRestart without
	// effect, like an operating system that ignores ACPI requests.
	IgnoreGraceful bool
	// ResetTypes are the allowed ResetType values (nil: DefaultResetTypes).
	// A listed value this simulator does not implement answers 501.
	ResetTypes []string
	// BootTargets are the allowed BootSourceOverrideTarget values
	// (nil: DefaultBootTargets).
	BootTargets []string
	// OmitAllowableValues leaves out the @Redfish.AllowableValues
	// annotations. The allowed lists are still enforced.
	OmitAllowableValues bool
	// InitialPower is every system's first power state, "On" or "Off"
	// (default "Off").
	InitialPower string
	// BIOSAttributes replaces the default BIOS attributes of every system.
	BIOSAttributes map[string]any
	// VirtualMediaImage, when set, is inserted in the CD at start.
	VirtualMediaImage string
}

// BootSettings is a system's boot override as the BMC holds it.
type BootSettings struct {
	Target  string // BootSourceOverrideTarget, e.g. "Pxe"
	Enabled string // BootSourceOverrideEnabled: "Disabled", "Once" or "Continuous"
	Mode    string // BootSourceOverrideMode: "UEFI" or "Legacy"
}

// Simulator is one simulated BMC. It is safe for concurrent use.
type Simulator struct {
	opts        Options
	resetTypes  []string
	bootTargets []string
	handler     http.Handler

	// closed is closed by Close to release hanging requests.
	closed    chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	latency     time.Duration
	systems     map[string]*system
	systemIDs   []string
	sessions    map[string]string // token -> session id
	nextSession int
	media       virtualMedia
	faults      []*Fault
	requests    int
	byRoute     map[string]int // "METHOD /path" -> count
	unauthed    int
}

type system struct {
	id        string
	power     string // "On" or "Off"
	pending   *powerChange
	boot      BootSettings
	boots     []string // boot source used at each boot
	resets    []string
	bios      map[string]any
	lastPatch map[string]any
}

// powerChange is a power change the BMC has accepted but not applied yet.
type powerChange struct {
	to      string // "On" or "Off"
	restart bool   // the system boots again (a restart while on)
	at      time.Time
}

type virtualMedia struct {
	image    string
	inserted bool
	ejects   int
}

// New returns a simulated BMC shaped by opts.
func New(opts Options) *Simulator {
	if opts.Systems <= 0 {
		opts.Systems = 1
	}
	if opts.Username == "" && opts.Password == "" {
		opts.Username, opts.Password = "admin", "password"
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 16
	}
	if opts.InitialPower != "On" {
		opts.InitialPower = "Off"
	}
	s := &Simulator{
		opts:        opts,
		resetTypes:  slices.Clone(opts.ResetTypes),
		bootTargets: slices.Clone(opts.BootTargets),
		closed:      make(chan struct{}),
		latency:     opts.Latency,
		systems:     map[string]*system{},
		sessions:    map[string]string{},
		byRoute:     map[string]int{},
		media:       virtualMedia{image: opts.VirtualMediaImage, inserted: opts.VirtualMediaImage != ""},
	}
	if s.resetTypes == nil {
		s.resetTypes = slices.Clone(DefaultResetTypes)
	}
	if s.bootTargets == nil {
		s.bootTargets = slices.Clone(DefaultBootTargets)
	}
	for i := 1; i <= opts.Systems; i++ {
		id := strconv.Itoa(i)
		bios := map[string]any{
			"BootMode": "Uefi", "ProcVirtualization": "Enabled", "SecureBoot": "Disabled",
			"SystemSerial": "SIM-" + id, "NumaNodes": 2,
		}
		if opts.BIOSAttributes != nil {
			bios = make(map[string]any, len(opts.BIOSAttributes))
			for k, v := range opts.BIOSAttributes {
				bios[k] = v
			}
		}
		s.systems[id] = &system{
			id:    id,
			power: opts.InitialPower,
			boot:  BootSettings{Target: "None", Enabled: "Disabled", Mode: "UEFI"},
			bios:  bios,
		}
		s.systemIDs = append(s.systemIDs, id)
	}
	s.handler = s.routes()
	return s
}

// Handler returns the BMC's HTTP handler.
func (s *Simulator) Handler() http.Handler { return s.handler }

// Close releases requests hanging on an injected FaultHang. The simulator
// keeps answering other requests. Close is idempotent.
func (s *Simulator) Close() { s.closeOnce.Do(func() { close(s.closed) }) }

// SystemIDs lists the ids of the simulated systems.
func (s *Simulator) SystemIDs() []string { return slices.Clone(s.systemIDs) }

// SetLatency changes the delay added to every request.
func (s *Simulator) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// PowerState returns a system's power state as the BMC reports it ("On",
// "Off", or while a delayed change is pending with TransitionStates,
// "PoweringOn"/"PoweringOff"); "" for an unknown system.
func (s *Simulator) PowerState(systemID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sys, ok := s.systems[systemID]
	if !ok {
		return ""
	}
	return s.reportedPower(sys, time.Now())
}

// SetPowerState sets a system's power state at once ("On" or "Off"),
// dropping any pending change; for test set-up.
func (s *Simulator) SetPowerState(systemID, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys, ok := s.systems[systemID]; ok && (state == "On" || state == "Off") {
		sys.power, sys.pending = state, nil
	}
}

// Boot returns a system's boot override settings.
func (s *Simulator) Boot(systemID string) BootSettings {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys, ok := s.systems[systemID]; ok {
		s.applyDue(sys, time.Now())
		return sys.boot
	}
	return BootSettings{}
}

// Boots lists, for each boot of the system so far, the boot source it used
// ("None" when no override applied).
func (s *Simulator) Boots(systemID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys, ok := s.systems[systemID]; ok {
		s.applyDue(sys, time.Now())
		return slices.Clone(sys.boots)
	}
	return nil
}

// ResetHistory lists the ResetType of every accepted reset of the system.
func (s *Simulator) ResetHistory(systemID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys, ok := s.systems[systemID]; ok {
		return slices.Clone(sys.resets)
	}
	return nil
}

// LastPatch returns the body of the last accepted PATCH of the system, as
// decoded JSON, or nil.
func (s *Simulator) LastPatch(systemID string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys, ok := s.systems[systemID]; ok {
		return sys.lastPatch
	}
	return nil
}

// VirtualMedia reports the CD's image and whether it is inserted.
func (s *Simulator) VirtualMedia() (image string, inserted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.media.image, s.media.inserted
}

// InsertVirtualMedia inserts image in the CD.
func (s *Simulator) InsertVirtualMedia(image string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.media.image, s.media.inserted = image, true
}

// Ejects counts EjectMedia actions received.
func (s *Simulator) Ejects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.media.ejects
}

// OpenSessions counts sessions logged in and not yet deleted.
func (s *Simulator) OpenSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Requests counts every request received, faulty ones included.
func (s *Simulator) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// RequestCount counts requests with this method and path (a trailing slash
// ignored, except for the service root "/redfish/v1/").
func (s *Simulator) RequestCount(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byRoute[method+" "+normalizePath(path)]
}

// Routes lists "METHOD /path" of every request received so far, sorted.
func (s *Simulator) Routes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.byRoute))
	for k := range s.byRoute {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Unauthorized counts requests refused with 401.
func (s *Simulator) Unauthorized() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unauthed
}

// FaultKind is what an injected fault does to a request.
type FaultKind int

// Fault kinds.
const (
	// FaultStatus answers a Redfish error with Fault.Status (default 500).
	FaultStatus FaultKind = iota + 1
	// FaultHang holds the request until the client gives up (its context
	// ends) or the simulator is closed, then drops it.
	FaultHang
	// FaultGarbage answers 200 with a body that is not valid JSON.
	FaultGarbage
	// FaultDrop closes the connection without an answer.
	FaultDrop
)

// Fault is an injected failure for the next Count matching requests.
type Fault struct {
	Kind   FaultKind
	Status int    // FaultStatus: the status to answer (default 500)
	Count  int    // matching requests to affect (default 1)
	Method string // match only this method ("" any)
	Path   string // match only paths containing this ("" any)
}

// Inject adds a fault. Faults are matched in the order injected; each
// request takes at most one.
func (s *Simulator) Inject(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	if f.Kind == FaultStatus && f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// FailNext makes the next n requests answer status.
func (s *Simulator) FailNext(n, status int) {
	s.Inject(Fault{Kind: FaultStatus, Status: status, Count: n})
}

// HangNext makes the next n requests hang until the client gives up.
func (s *Simulator) HangNext(n int) { s.Inject(Fault{Kind: FaultHang, Count: n}) }

// GarbageNext makes the next n requests answer invalid JSON.
func (s *Simulator) GarbageNext(n int) { s.Inject(Fault{Kind: FaultGarbage, Count: n}) }

// ClearFaults removes every pending fault.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the first fault matching r and uses up one of its
// counts. Called with s.mu held.
func (s *Simulator) takeFault(method, path string) *Fault {
	for i, f := range s.faults {
		if f.Method != "" && f.Method != method {
			continue
		}
		if f.Path != "" && !containsPath(path, f.Path) {
			continue
		}
		taken := *f
		f.Count--
		if f.Count == 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return &taken
	}
	return nil
}

// applyDue applies a pending power change whose time has come. Called with
// s.mu held.
func (s *Simulator) applyDue(sys *system, now time.Time) {
	if sys.pending != nil && !now.Before(sys.pending.at) {
		pc := sys.pending
		sys.pending = nil
		s.applyPower(sys, pc.to, pc.restart)
	}
}

// applyPower makes a power change take effect; powering on or restarting
// boots the system, which uses up a one-time boot override.
func (s *Simulator) applyPower(sys *system, to string, restart bool) {
	boots := (to == "On" && sys.power == "Off") || (to == "On" && restart)
	sys.power = to
	if !boots {
		return
	}
	source := "None"
	if sys.boot.Enabled != "Disabled" {
		source = sys.boot.Target
	}
	sys.boots = append(sys.boots, source)
	if sys.boot.Enabled == "Once" {
		sys.boot.Enabled, sys.boot.Target = "Disabled", "None"
	}
}

// reportedPower is the PowerState a GET shows. Called with s.mu held.
func (s *Simulator) reportedPower(sys *system, now time.Time) string {
	s.applyDue(sys, now)
	if sys.pending != nil && s.opts.TransitionStates && sys.pending.to != sys.power {
		if sys.pending.to == "On" {
			return "PoweringOn"
		}
		return "PoweringOff"
	}
	return sys.power
}

// schedulePower applies a change now or, with PowerDelay, later. A new change
// replaces one still pending. Called with s.mu held.
func (s *Simulator) schedulePower(sys *system, to string, restart bool) {
	if s.opts.PowerDelay <= 0 {
		sys.pending = nil
		s.applyPower(sys, to, restart)
		return
	}
	sys.pending = &powerChange{to: to, restart: restart, at: time.Now().Add(s.opts.PowerDelay)}
}
