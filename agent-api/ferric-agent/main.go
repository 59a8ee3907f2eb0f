// Command ferric-agent is Ferric's deploy agent. In a ramdisk it reads its
// settings from the kernel command line (ferric.api=, ferric.ca=, BOOTIF=),
// inventories the machine, looks its node up on the agent API and carries
// out what the checkins tell it: write an image, clean the disks, inspect,
// power off. See docs/agent.md.
//
//	ferric-agent                           # in a ramdisk: everything from /proc/cmdline
//	ferric-agent -api URL -simulate FILE   # a simulated machine, unprivileged
//	ferric-agent fleet -api URL -n 100     # 100 simulated machines in one process
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/ferric-metal/ferric/agent-api/agent"
	"github.com/ferric-metal/ferric/agent-api/hwinventory"
	"github.com/ferric-metal/ferric/shared/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferric-agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "fleet" {
		return runFleet(ctx, args[1:], getenv, stderr)
	}
	st, err := parseSettings(args, getenv, stderr)
	if err != nil {
		return err
	}
	if st.version {
		fmt.Fprintf(stdout, "ferric-agent %s (%s)\n", buildinfo.Version, runtime.Version())
		return nil
	}
	log, err := newLogger(stderr, st.logLevel)
	if err != nil {
		return err
	}
	cfg, profile := st.agent, st.profile
	if cfg.BootMAC != "" {
		if _, err := hwinventory.ParseBOOTIF(cfg.BootMAC); err != nil {
			// A bad kernel argument must not keep the machine from its
			// lookup: the other evidence (MACs, BMC, serial) still counts.
			log.Warn("BOOTIF ignored", "bootif", cfg.BootMAC, "error", err)
			cfg.BootMAC = ""
		}
	}
	hc, err := agent.NewHTTPClient(cfg.CAFile, 4)
	if err != nil {
		return err
	}
	var hw agent.Hardware = &agent.LinuxMachine{BootMAC: cfg.BootMAC, Log: log}
	if profile != "" {
		p, err := hwinventory.LoadProfile(profile)
		if err != nil {
			return err
		}
		hw = &agent.SimulatedMachine{Profile: p, Log: log}
		log.Info("simulating a machine", "profile", profile)
	}
	log.Info("ferric-agent starting", "version", buildinfo.Version, "api", cfg.APIURL)
	return agent.New(cfg, hc, hw, log).Run(ctx)
}

// settings are the agent program's: flags win over FERRIC_AGENT_*
// variables, which win over the kernel command line.
type settings struct {
	agent    agent.Config
	profile  string // -simulate
	logLevel string
	version  bool
}

func parseSettings(args []string, getenv func(string) string, stderr io.Writer) (*settings, error) {
	fs := flag.NewFlagSet("ferric-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: ferric-agent [flags]
       ferric-agent fleet [flags]   (simulated machines in one process; -h for its flags)

Ferric's deploy agent. In a ramdisk, the kernel command line gives its
settings (ferric.api=URL ferric.ca=PEM-PATH BOOTIF=01-aa-bb-cc-dd-ee-ff);
flags, then FERRIC_AGENT_* variables, override it.

Flags:
`)
		fs.PrintDefaults()
	}
	api := fs.String("api", "", "agent API URL (FERRIC_AGENT_API_URL; kernel: ferric.api)")
	ca := fs.String("ca", "", "PEM bundle of extra CAs for the agent API and image servers (FERRIC_AGENT_CA_FILE; kernel: ferric.ca)")
	bootif := fs.String("bootif", "", "MAC of the interface that booted (FERRIC_AGENT_BOOTIF; kernel: BOOTIF)")
	simulate := fs.String("simulate", "", "run as the simulated machine of this hardware profile (FERRIC_AGENT_SIMULATE)")
	cmdline := fs.String("cmdline", "/proc/cmdline", "kernel command line to read (not read under -simulate)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (FERRIC_AGENT_LOG_LEVEL)")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	st := &settings{version: *version}
	if st.version {
		return st, nil
	}
	set := setFlags(fs)
	pick := func(flagName, flagValue, env, kernel string) string {
		if set[flagName] {
			return flagValue
		}
		if v := getenv(env); v != "" {
			return v
		}
		return kernel
	}
	st.profile = pick("simulate", *simulate, "FERRIC_AGENT_SIMULATE", "")
	var kp agent.KernelParams
	if st.profile == "" {
		data, err := os.ReadFile(*cmdline)
		if err != nil && set["cmdline"] {
			return nil, fmt.Errorf("kernel command line: %w", err)
		}
		kp = agent.ParseKernelCmdline(string(data))
	}
	st.logLevel = pick("log-level", *logLevel, "FERRIC_AGENT_LOG_LEVEL", *logLevel)
	st.agent = agent.Config{
		APIURL:  pick("api", *api, "FERRIC_AGENT_API_URL", kp.APIURL),
		CAFile:  pick("ca", *ca, "FERRIC_AGENT_CA_FILE", kp.CAFile),
		BootMAC: pick("bootif", *bootif, "FERRIC_AGENT_BOOTIF", kp.BootMAC),
		Version: "ferric-agent " + buildinfo.Version,
	}
	if err := st.agent.Validate(); err != nil {
		return nil, err
	}
	return st, nil
}

func runFleet(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferric-agent fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: ferric-agent fleet -api URL [flags]

Runs -n simulated machines, each with its own agent, MACs, serial number and
sparse disk file under -dir, in one process. Machine i has MAC
52:54:00:<i as three bytes> on its first interface (see docs/agent.md), so
enroll nodes with those ports for the agents to find them.

Flags:
`)
		fs.PrintDefaults()
	}
	api := fs.String("api", getenv("FERRIC_AGENT_API_URL"), "agent API URL (FERRIC_AGENT_API_URL)")
	ca := fs.String("ca", getenv("FERRIC_AGENT_CA_FILE"), "PEM bundle of extra CAs (FERRIC_AGENT_CA_FILE)")
	n := fs.Int("n", 10, "number of machines")
	first := fs.Int("first", 0, "index of the first machine")
	dir := fs.String("dir", "", "directory for the disk files (default: a new temporary directory)")
	diskSize := fs.Int64("disk-size", 8<<30, "size of each machine's sparse disk file, in bytes")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 || *n > 100000 {
		return fmt.Errorf("-n %d: between 1 and 100000 machines", *n)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "ferric-fleet-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	cfg := agent.FleetConfig{
		Agent:    agent.Config{APIURL: *api, CAFile: *ca, Version: "ferric-agent " + buildinfo.Version},
		Machines: *n, First: *first, Dir: *dir, DiskSize: *diskSize, Log: log,
	}
	if err := cfg.Agent.Validate(); err != nil {
		return err
	}
	if cfg.Client, err = agent.NewHTTPClient(*ca, 64); err != nil {
		return err
	}
	profiles, err := agent.FleetProfiles(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "ferric-agent fleet: %d simulated machines, disks in %s; Ctrl-C stops them\n", *n, *dir)
	return agent.RunFleet(ctx, cfg, profiles)
}

func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
