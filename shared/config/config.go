// Package config reads Ferric's settings from FERRIC_* environment variables,
// with command-line flags overriding them. Every setting is declared once, in
// the settings table below, which also generates docs/configuration.md.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Program names, used to select which settings a program accepts.
const (
	PublicAPI = "ferric-public-api"
	AgentAPI  = "ferric-agent-api"
	Conductor = "ferric-conductor"
	Admin     = "ferric"
)

// Config holds every setting of every program; each program reads the ones
// it declares in the table.
type Config struct {
	DatabaseURL      string
	AutoMigrate      bool
	DatabaseMaxConns int
	DatabaseWait     time.Duration

	PublicListen string
	AgentListen  string
	// Agent API
	AgentAllowedCIDRs    []string
	AgentTrustedProxies  []string
	AgentRateLimit       float64
	AgentMaxInFlight     int
	AgentBodiesPerSource int
	AgentTLSCertFile     string
	AgentTLSKeyFile      string
	AgentTokenTTL        time.Duration
	AgentCheckinInterval time.Duration
	Discovery            bool
	DiscoveryRules       string
	DiscoveryQuota       int
	DiscoveryQuotaWindow time.Duration
	DiscoveryBMCNetworks []string

	EnabledDrivers   []string
	FastTrack        bool
	FastTrackTimeout time.Duration
	AutomatedClean   bool
	CleanErase       string

	Auth             string
	OperatorKeysFile string
	AgentKeysFile    string
	TokenIssuer      string

	ConductorName string
	ShutdownGrace time.Duration

	OperatorWorkers    int
	AgentWorkers       int
	OperatorQueueLimit int
	AgentQueueLimit    int
	SyncCallWorkers    int
	SyncCallTimeout    time.Duration
	APIConcurrency     int
	LockTTL            time.Duration
	TaskLease          time.Duration

	PowerSyncInterval    time.Duration
	PowerSyncWorkers     int
	PowerSyncTimeout     time.Duration
	PowerSyncMaxFailures int
	PowerStateTimeout    time.Duration
	ForcePowerState      bool
	CallbackTimeout      time.Duration

	LogLevel  string
	LogFormat string

	// Operator API
	HTPasswdFile  string
	HTPasswdRoles string
	AuditLog      string
}

// Setting is one configuration knob: its flag, environment variable,
// default, the programs that read it and what it does.
type Setting struct {
	Flag     string
	Default  string
	Usage    string
	Programs []string
	set      func(c *Config, v string) error
}

// Env is the environment variable of the setting.
func (s Setting) Env() string {
	return "FERRIC_" + strings.ToUpper(strings.ReplaceAll(s.Flag, "-", "_"))
}

var (
	allServers = []string{PublicAPI, AgentAPI, Conductor}
	withDB     = []string{PublicAPI, AgentAPI, Conductor, Admin}
)

// Settings lists every setting, in the order docs/configuration.md shows them.
var Settings = []Setting{
	{Flag: "database-url", Programs: withDB,
		Usage: "PostgreSQL connection URL, e.g. postgres://ferric@db/ferric?sslmode=verify-full. Required; `make run` provides a private cluster when unset.",
		set:   func(c *Config, v string) error { c.DatabaseURL = v; return nil }},
	{Flag: "auto-migrate", Default: "false", Programs: allServers,
		Usage: "Apply pending schema migrations at start-up (otherwise run `ferric migrate`).",
		set:   func(c *Config, v string) (err error) { c.AutoMigrate, err = parseBool(v); return }},
	{Flag: "database-max-conns", Default: "20", Programs: allServers,
		Usage: "Maximum open connections to PostgreSQL per process.",
		set:   func(c *Config, v string) (err error) { c.DatabaseMaxConns, err = parsePositive(v); return }},
	{Flag: "database-wait", Default: "30s", Programs: withDB,
		Usage: "How long a starting program retries an unreachable database before giving up.",
		set:   func(c *Config, v string) (err error) { c.DatabaseWait, err = parseDuration(v); return }},
	{Flag: "public-listen", Default: "127.0.0.1:6385", Programs: []string{PublicAPI, Admin},
		Usage: "Address the operator (public) API listens on; the management network.",
		set:   func(c *Config, v string) error { c.PublicListen = v; return checkHostPort(v) }},
	{Flag: "agent-listen", Default: "127.0.0.1:6386", Programs: []string{AgentAPI},
		Usage: "Address the agent API listens on; the provisioning VLAN.",
		set:   func(c *Config, v string) error { c.AgentListen = v; return checkHostPort(v) }},
	{Flag: "agent-allowed-cidrs", Programs: []string{AgentAPI},
		Usage: "Comma-separated networks agents may connect from (e.g. 10.20.0.0/16); other sources get 403. Empty: any source, leaving the filtering to the VLAN's ACL.",
		set: func(c *Config, v string) error {
			c.AgentAllowedCIDRs = splitList(v)
			for _, n := range c.AgentAllowedCIDRs {
				if _, _, err := net.ParseCIDR(n); err != nil {
					return fmt.Errorf("%q is not a network such as 10.20.0.0/16 or fd00:20::/64", n)
				}
			}
			return nil
		}},
	{Flag: "agent-trusted-proxies", Programs: []string{AgentAPI},
		Usage: "Comma-separated networks of reverse proxies whose X-Forwarded-For the agent API believes; from any other peer the header is ignored. Empty: trust none.",
		set: func(c *Config, v string) error {
			c.AgentTrustedProxies = splitList(v)
			for _, n := range c.AgentTrustedProxies {
				if _, _, err := net.ParseCIDR(n); err != nil {
					return fmt.Errorf("%q is not a network such as 10.20.0.0/16 or fd00:20::/64", n)
				}
			}
			return nil
		}},
	{Flag: "agent-rate-limit", Default: "5", Programs: []string{AgentAPI},
		Usage: "Requests per second one source address (an IPv6 /64) may send to the agent API, in bursts of twice that; beyond it, 429 with Retry-After. 0 disables the limit.",
		set: func(c *Config, v string) error {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || r < 0 || r != r {
				return fmt.Errorf("%q is not a rate such as 5 or 0.5", v)
			}
			c.AgentRateLimit = r
			return nil
		}},
	{Flag: "agent-max-in-flight", Default: "256", Programs: []string{AgentAPI},
		Usage: "Requests the agent API serves at once; more get 503 at once.",
		set:   func(c *Config, v string) (err error) { c.AgentMaxInFlight, err = parsePositive(v); return }},
	{Flag: "agent-bodies-per-source", Default: "0", Programs: []string{AgentAPI},
		Usage: "Request bodies one source (an address, an IPv6 /64) may be sending at once, of each kind (inventories, checkins); more get 503 at once. 0: a sixteenth of agent-max-in-flight for inventories, a quarter for checkins. Behind a proxy, set agent-trusted-proxies, or every agent counts as the proxy.",
		set: func(c *Config, v string) (err error) {
			c.AgentBodiesPerSource, err = parseCount(v, "derived from agent-max-in-flight")
			return
		}},
	{Flag: "agent-tls-cert-file", Programs: []string{AgentAPI},
		Usage: "PEM certificate (chain) the agent API serves TLS with; with agent-tls-key-file. Empty: plain HTTP.",
		set:   func(c *Config, v string) error { c.AgentTLSCertFile = v; return nil }},
	{Flag: "agent-tls-key-file", Programs: []string{AgentAPI},
		Usage: "PEM private key of agent-tls-cert-file.",
		set:   func(c *Config, v string) error { c.AgentTLSKeyFile = v; return nil }},
	{Flag: "agent-token-ttl", Default: "1h", Programs: []string{AgentAPI},
		Usage: "Lifetime of an agent token; native checkins renew it once half has passed. Power actions, new provisioning steps and operator actions revoke tokens earlier.",
		set:   func(c *Config, v string) (err error) { c.AgentTokenTTL, err = parseDuration(v); return }},
	{Flag: "agent-checkin-interval", Default: "30s", Programs: []string{AgentAPI},
		Usage: "How often agents are told to check in.",
		set:   func(c *Config, v string) (err error) { c.AgentCheckinInterval, err = parseDuration(v); return }},
	{Flag: "discovery", Default: "false", Programs: []string{AgentAPI},
		Usage: "Enroll a node (in enroll, with ports for its MACs) when an agent's inventory matches none. Anyone on the provisioning network can then create nodes, within discovery-quota.",
		set:   func(c *Config, v string) (err error) { c.Discovery, err = parseBool(v); return }},
	{Flag: "discovery-rules", Default: "bmc_address -> ipmi ipmi_address={bmc_address}; * -> fake", Programs: []string{AgentAPI},
		Usage: "How discovery picks a new node's driver and driver_info: `condition -> driver key=template ...` rules separated by `;`, the first that holds applies. Conditions: * or bmc_address (the agent reported a BMC address inside discovery-bmc-networks); templates may use {bmc_address} and {bmc_host} (IPv6 bracketed).",
		set:   func(c *Config, v string) error { c.DiscoveryRules = v; return nil }},
	{Flag: "discovery-quota", Default: "2", Programs: []string{AgentAPI},
		Usage: "Nodes one source address may cause discovery to enroll within discovery-quota-window; beyond it, lookups get the usual 404.",
		set:   func(c *Config, v string) (err error) { c.DiscoveryQuota, err = parsePositive(v); return }},
	{Flag: "discovery-quota-window", Default: "24h", Programs: []string{AgentAPI},
		Usage: "The window of discovery-quota.",
		set:   func(c *Config, v string) (err error) { c.DiscoveryQuotaWindow, err = parseDuration(v); return }},
	{Flag: "discovery-bmc-networks", Programs: []string{AgentAPI},
		Usage: "Comma-separated networks (e.g. 10.10.0.0/16) in which a BMC address an agent reports may go into a discovered node's driver_info (the bmc_address rules). An address outside them stays in the inventory only, so an agent cannot make the conductor connect where it likes. Empty: none.",
		set: func(c *Config, v string) error {
			c.DiscoveryBMCNetworks = splitList(v)
			for _, n := range c.DiscoveryBMCNetworks {
				if _, _, err := net.ParseCIDR(n); err != nil {
					return fmt.Errorf("%q is not a network such as 10.10.0.0/16 or fd00:10::/64", n)
				}
			}
			return nil
		}},
	{Flag: "enabled-drivers", Default: "fake", Programs: []string{PublicAPI, Conductor, Admin},
		Usage: "Comma-separated hardware drivers to enable; an unknown name stops start-up. See `ferric drivers`.",
		set:   func(c *Config, v string) error { c.EnabledDrivers = splitList(v); return nil }},
	{Flag: "fast-track", Default: "false", Programs: allServers,
		Usage: "Ironic's [deploy]fast_track: agents may look up nodes that are enroll, manageable or available and stay up there (a checkin answers wait, not power_off); a deploy or clean of a node whose agent checked in within fast-track-timeout starts on that agent without a power cycle, keeping its token; a clean by the agent leaves the machine on. Give every program the same value.",
		set:   func(c *Config, v string) (err error) { c.FastTrack, err = parseBool(v); return }},
	{Flag: "fast-track-timeout", Default: "300s", Programs: []string{PublicAPI},
		Usage: "Ironic's [deploy]fast_track_timeout: how recent an agent's last checkin must be for fast track to hand it a deploy or clean; older, the node boots an agent the usual way. Keep it below the machine's power-on self test plus the agent's start-up.",
		set: func(c *Config, v string) (err error) {
			if c.FastTrackTimeout, err = parseDuration(v); err == nil && c.FastTrackTimeout == 0 {
				err = fmt.Errorf("%q: fast track needs a timeout above zero", v)
			}
			return
		}},
	{Flag: "automated-clean", Default: "true", Programs: []string{Conductor},
		Usage: "Ironic's [conductor]automated_clean: clean a node by its agent after undeploy and on provide (manageable to available). false: those cleanings do no agent work (the node is powered off, unless fast track, and goes on). Manual cleaning is unaffected.",
		set:   func(c *Config, v string) (err error) { c.AutomatedClean, err = parseBool(v); return }},
	{Flag: "clean-erase", Default: "metadata", Programs: []string{Conductor},
		Usage: "What an automated clean has the agent erase: metadata (step erase_devices_metadata: partition tables, filesystem and RAID signatures) or full (step erase_devices: every byte, which may take hours). Ironic's analogue is the priorities [deploy]erase_devices_metadata_priority and erase_devices_priority.",
		set: func(c *Config, v string) error {
			if v != "metadata" && v != "full" {
				return fmt.Errorf("%q: want metadata or full", v)
			}
			c.CleanErase = v
			return nil
		}},
	{Flag: "auth", Default: "jwt", Programs: []string{PublicAPI},
		Usage: "Operator authentication: jwt (bearer tokens from `ferric token`), http_basic (an htpasswd file, as Ironic standalone; see htpasswd-file) or noauth (loopback listeners only).",
		set: func(c *Config, v string) error {
			if v != "jwt" && v != "noauth" && v != "http_basic" {
				return fmt.Errorf("want jwt, http_basic or noauth")
			}
			c.Auth = v
			return nil
		}},
	{Flag: "operator-keys-file", Programs: []string{PublicAPI, Admin},
		Usage: "File of operator token signing keys, one `kid secret` pair per line (secret: 32+ bytes, base64); the first line signs, all verify. Required when auth is jwt.",
		set:   func(c *Config, v string) error { c.OperatorKeysFile = v; return nil }},
	{Flag: "agent-keys-file", Programs: []string{AgentAPI},
		Usage: "File of agent token signing keys, same format as operator-keys-file; must differ from it.",
		set:   func(c *Config, v string) error { c.AgentKeysFile = v; return nil }},
	{Flag: "token-issuer", Default: "ferric", Programs: []string{PublicAPI, AgentAPI, Admin},
		Usage: "Issuer (iss) written into and required of every token.",
		set:   func(c *Config, v string) error { c.TokenIssuer = v; return nil }},
	{Flag: "conductor-name", Default: "(host name)", Programs: []string{Conductor},
		Usage: "Name this conductor registers under; must be unique among running conductors.",
		set: func(c *Config, v string) error {
			if v == "(host name)" {
				h, err := os.Hostname()
				if err != nil {
					return err
				}
				v = h
			}
			c.ConductorName = v
			return nil
		}},
	{Flag: "operator-workers", Default: "16", Programs: []string{Conductor},
		Usage: "Tasks operators asked for (power, provisioning, async passthru) run at once per conductor.",
		set:   func(c *Config, v string) (err error) { c.OperatorWorkers, err = parsePositive(v); return }},
	{Flag: "agent-workers", Default: "16", Programs: []string{Conductor},
		Usage: "Tasks triggered by agents (checkins) run at once per conductor; separate from operator work so a flood of one cannot starve the other.",
		set:   func(c *Config, v string) (err error) { c.AgentWorkers, err = parsePositive(v); return }},
	{Flag: "operator-queue-limit", Default: "1000", Programs: []string{PublicAPI},
		Usage: "Operator tasks waiting for a worker beyond which new requests get 503 at once.",
		set:   func(c *Config, v string) (err error) { c.OperatorQueueLimit, err = parsePositive(v); return }},
	{Flag: "agent-queue-limit", Default: "10000", Programs: []string{AgentAPI},
		Usage: "Agent-triggered tasks waiting for a worker beyond which checkins get 503 at once.",
		set:   func(c *Config, v string) (err error) { c.AgentQueueLimit, err = parsePositive(v); return }},
	{Flag: "sync-call-workers", Default: "8", Programs: []string{PublicAPI},
		Usage: "Synchronous driver calls (boot device, synchronous passthru) served at once; more get 503 at once.",
		set:   func(c *Config, v string) (err error) { c.SyncCallWorkers, err = parsePositive(v); return }},
	{Flag: "sync-call-timeout", Default: "30s", Programs: []string{PublicAPI},
		Usage: "Deadline of one synchronous driver call.",
		set:   func(c *Config, v string) (err error) { c.SyncCallTimeout, err = parseDuration(v); return }},
	{Flag: "api-concurrency", Default: "0", Programs: []string{PublicAPI},
		Usage: "Requests the operator API works on at once; more wait their turn, first come first served, for up to 5s and then get 503 with Retry-After. Synchronous BMC calls are bounded by sync-call-workers instead. 0: two per CPU, at least 4; raise it when PostgreSQL is on another machine.",
		set:   func(c *Config, v string) (err error) { c.APIConcurrency, err = parseCount(v, "two per CPU"); return }},
	{Flag: "lock-ttl", Default: "30s", Programs: []string{Conductor},
		Usage: "Lease of a node's exclusive lock; renewed every third of it while a task runs. A dead conductor's locks free themselves after it.",
		set:   func(c *Config, v string) (err error) { c.LockTTL, err = parseDuration(v); return }},
	{Flag: "task-lease", Default: "30s", Programs: []string{Conductor},
		Usage: "Lease of a claimed task, renewed every third of it; a dead conductor's tasks are taken over after it.",
		set:   func(c *Config, v string) (err error) { c.TaskLease, err = parseDuration(v); return }},
	{Flag: "power-sync-interval", Default: "60s", Programs: []string{Conductor},
		Usage: "How often every node's power state is read from its BMC (0 disables).",
		set:   func(c *Config, v string) (err error) { c.PowerSyncInterval, err = parseDuration(v); return }},
	{Flag: "power-sync-workers", Default: "16", Programs: []string{Conductor},
		Usage: "BMC reads in flight at once during power sync, per conductor.",
		set:   func(c *Config, v string) (err error) { c.PowerSyncWorkers, err = parsePositive(v); return }},
	{Flag: "power-state-timeout", Default: "60s", Programs: []string{Conductor},
		Usage: "How long a power action may take to show in the power state the BMC reports (Ironic's power_state_change_timeout), when the request gives no timeout: the conductor reads the BMC until then, and past it the action fails with last_error. Many BMCs apply a reset seconds after accepting it.",
		set:   func(c *Config, v string) (err error) { c.PowerStateTimeout, err = parseDuration(v); return }},
	{Flag: "power-sync-timeout", Default: "30s", Programs: []string{Conductor},
		Usage: "Deadline of one BMC read during power sync.",
		set:   func(c *Config, v string) (err error) { c.PowerSyncTimeout, err = parseDuration(v); return }},
	{Flag: "power-sync-max-failures", Default: "3", Programs: []string{Conductor},
		Usage: "Failed power reads in a row after which a node gets fault \"power failure\".",
		set:   func(c *Config, v string) (err error) { c.PowerSyncMaxFailures, err = parsePositive(v); return }},
	{Flag: "force-power-state", Default: "false", Programs: []string{Conductor},
		Usage: "When power sync finds a node in another power state than recorded, set the hardware back to the recorded state instead of recording the new one.",
		set:   func(c *Config, v string) (err error) { c.ForcePowerState, err = parseBool(v); return }},
	{Flag: "callback-timeout", Default: "30m", Programs: []string{Conductor},
		Usage: "Ironic's [conductor]deploy_callback_timeout (and clean_callback_timeout, inspect_wait_timeout): how long a node waiting for its agent (wait call-back, clean wait, inspect wait) may go without a checkin from it; then it fails (deploy failed, clean failed, inspect failed, with Ironic's \"Timeout reached while ...\" as last_error) and is powered off. In wait call-back and clean wait it counts from the agent's last checkin (Ironic's heartbeats touch the node), in inspect wait from the start of the wait; nodes in maintenance are left waiting. 0 disables it.",
		set:   func(c *Config, v string) (err error) { c.CallbackTimeout, err = parseDuration(v); return }},
	{Flag: "shutdown-grace", Default: "15s", Programs: allServers,
		Usage: "How long a stopping program waits for in-flight requests and tasks.",
		set:   func(c *Config, v string) (err error) { c.ShutdownGrace, err = parseDuration(v); return }},
	{Flag: "htpasswd-file", Programs: []string{PublicAPI},
		Usage: "Apache htpasswd file of bcrypt entries (made with htpasswd -B) that auth http_basic checks operators against; read again within a second of a change (a file that no longer parses is logged and the last good one kept). Required when auth is http_basic.",
		set:   func(c *Config, v string) error { c.HTPasswdFile = v; return nil }},
	{Flag: "htpasswd-roles", Default: "*=reader", Programs: []string{PublicAPI},
		Usage: "Roles of http_basic users: comma-separated user=role (admin, member or reader); *=role gives every other user of the file that role. A user given no role is authenticated but refused everything.",
		set:   func(c *Config, v string) error { c.HTPasswdRoles = v; return nil }},
	{Flag: "audit-log", Programs: []string{PublicAPI},
		Usage: "File the operator API appends its audit records to (one JSON object per mutating request: who, what, which node, result; never bodies). Empty: the process log, records marked audit=true.",
		set:   func(c *Config, v string) error { c.AuditLog = v; return nil }},
	{Flag: "log-level", Default: "info", Programs: withDB,
		Usage: "debug, info, warn or error.",
		set:   func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{Flag: "log-format", Default: "auto", Programs: withDB,
		Usage: "json, text, or auto (text on a terminal, JSON otherwise).",
		set:   func(c *Config, v string) error { c.LogFormat = v; return nil }},
}

// Load reads the settings of program from getenv and args; extraFlags may
// register a command's own flags on the same flag set. Flags win over
// the environment, which wins over defaults. Unknown flags and malformed
// values are errors naming the setting. Returned alongside the config are
// the positional arguments left after the flags.
func Load(program string, args []string, getenv func(string) string, usageOut io.Writer, extraFlags ...func(*flag.FlagSet)) (Config, []string, error) {
	fs := flag.NewFlagSet(program, flag.ContinueOnError)
	fs.SetOutput(usageOut)
	for _, add := range extraFlags {
		add(fs)
	}
	values := map[string]*string{}
	var mine []Setting
	for _, s := range Settings {
		if !s.usedBy(program) {
			continue
		}
		mine = append(mine, s)
		def := s.Default
		if v, ok := lookup(getenv, s.Env()); ok {
			def = v
		}
		values[s.Flag] = fs.String(s.Flag, def, s.Usage+" (env "+s.Env()+")")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	var c Config
	for _, s := range mine {
		if err := s.set(&c, *values[s.Flag]); err != nil {
			return Config{}, nil, fmt.Errorf("setting %s (-%s): %w", s.Env(), s.Flag, err)
		}
	}
	return c, fs.Args(), nil
}

// RequireDatabase reports a clear error when no database URL is configured.
func (c Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return errors.New("no database configured: set FERRIC_DATABASE_URL (or -database-url); `make run` starts a private PostgreSQL for local use")
	}
	return nil
}

func (s Setting) usedBy(program string) bool {
	for _, p := range s.Programs {
		if p == program {
			return true
		}
	}
	return false
}

func lookup(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not a boolean", v)
	}
	return b, nil
}

func parsePositive(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive integer", v)
	}
	return n, nil
}

// parseCount parses a count where 0 means a default, which zero describes.
func parseCount(v, zero string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a count such as 8 (0: %s)", v, zero)
	}
	return n, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 15s or 2m", v)
	}
	return d, nil
}

func checkHostPort(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	return nil
}
