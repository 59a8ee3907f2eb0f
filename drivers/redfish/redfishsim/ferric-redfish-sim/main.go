// Command ferric-redfish-sim serves simulated Redfish BMCs for demos, manual
// tests and load tests of Ferric's redfish driver.
//
// Each BMC listens on its own port, counting up from the -listen port, so a
// node's redfish_address is simply http://HOST:PORT:
//
//	ferric-redfish-sim -listen 127.0.0.1:8000 -bmcs 100 -latency 50ms
//
// serves BMCs on 127.0.0.1:8000 to 127.0.0.1:8099 (with port 0 each gets a
// free port). Every BMC has -systems ComputerSystems with ids 1..N at
// /redfish/v1/Systems/{id}, accepts -username/-password (HTTP Basic, or
// sessions with -sessions) and starts powered off. The program prints one
// line per BMC with its URL and stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
	"github.com/ferric-metal/ferric/shared/httpserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferric-redfish-sim:", err)
		os.Exit(1)
	}
}

// maxBMCs keeps a typo from opening thousands of ports.
const maxBMCs = 2000

// shutdownGrace is how long in-flight requests get once a stop is asked.
const shutdownGrace = 5 * time.Second

type config struct {
	listen      string
	bmcs        int
	allowRemote bool
	opts        redfishsim.Options
	resetTypes  string
	bootTargets string
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("ferric-redfish-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: ferric-redfish-sim [flags]

Serves simulated Redfish BMCs, each on its own port counting up from the
-listen port (port 0: a free port each). Point a node at one with
redfish_address http://HOST:PORT and redfish_system_id 1.

Flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8000", "host:port of the first BMC")
	fs.IntVar(&cfg.bmcs, "bmcs", 1, "number of BMCs, on consecutive ports")
	fs.BoolVar(&cfg.allowRemote, "allow-remote", false, "allow a -listen host other than loopback")
	fs.IntVar(&cfg.opts.Systems, "systems", 1, "ComputerSystems per BMC")
	fs.StringVar(&cfg.opts.Username, "username", "admin", "accepted user name")
	fs.StringVar(&cfg.opts.Password, "password", "password", "accepted password")
	fs.BoolVar(&cfg.opts.SessionService, "sessions", false, "serve a SessionService (X-Auth-Token sessions)")
	fs.DurationVar(&cfg.opts.Latency, "latency", 0, "delay added to every request")
	fs.DurationVar(&cfg.opts.PowerDelay, "power-delay", 0, "delay before a power change takes effect")
	fs.BoolVar(&cfg.opts.TransitionStates, "transition-states", false, "report PoweringOn/PoweringOff during -power-delay")
	fs.BoolVar(&cfg.opts.IgnoreGraceful, "ignore-graceful", false, "accept GracefulShutdown/GracefulRestart without effect")
	fs.StringVar(&cfg.opts.InitialPower, "power", "Off", "initial power state: On or Off")
	fs.StringVar(&cfg.resetTypes, "reset-types", strings.Join(redfishsim.DefaultResetTypes, ","), "allowed ResetType values, comma separated")
	fs.StringVar(&cfg.bootTargets, "boot-targets", strings.Join(redfishsim.DefaultBootTargets, ","), "allowed BootSourceOverrideTarget values, comma separated")
	fs.BoolVar(&cfg.opts.OmitAllowableValues, "omit-allowable-values", false, "leave out the @Redfish.AllowableValues annotations")
	fs.StringVar(&cfg.opts.VirtualMediaImage, "vmedia-image", "", "image inserted in each BMC's virtual CD at start")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.bmcs < 1 || cfg.bmcs > maxBMCs {
		return nil, fmt.Errorf("-bmcs must be 1 to %d", maxBMCs)
	}
	if cfg.opts.Systems < 1 {
		return nil, errors.New("-systems must be at least 1")
	}
	if cfg.opts.InitialPower != "On" && cfg.opts.InitialPower != "Off" {
		return nil, errors.New("-power must be On or Off")
	}
	if cfg.opts.Username == "" {
		return nil, errors.New("-username must not be empty")
	}
	cfg.opts.ResetTypes = splitList(cfg.resetTypes)
	cfg.opts.BootTargets = splitList(cfg.bootTargets)
	return cfg, nil
}

func splitList(s string) []string {
	out := []string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// listenAll opens one listener per BMC on consecutive ports.
func listenAll(cfg *config) ([]net.Listener, error) {
	host, portText, err := net.SplitHostPort(cfg.listen)
	if err != nil {
		return nil, fmt.Errorf("-listen: %w", err)
	}
	if !cfg.allowRemote && !isLoopback(host) {
		return nil, fmt.Errorf("-listen host %q is not loopback; the simulator has well-known credentials (use -allow-remote)", host)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port+cfg.bmcs-1 > 65535 {
		return nil, fmt.Errorf("-listen port %q does not leave room for %d BMCs", portText, cfg.bmcs)
	}
	var lns []net.Listener
	for i := range cfg.bmcs {
		p := 0
		if port != 0 {
			p = port + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// run serves the BMCs until ctx ends. -help is not an error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	lns, err := listenAll(cfg)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	sims := make([]*redfishsim.Simulator, len(lns))
	for i, ln := range lns {
		sims[i] = redfishsim.New(cfg.opts)
		fmt.Fprintf(stdout, "bmc %d: http://%s systems: %s\n", i, ln.Addr(), strings.Join(sims[i].SystemIDs(), ","))
	}
	log.Info("serving simulated BMCs", "bmcs", len(lns), "latency", cfg.opts.Latency, "sessions", cfg.opts.SessionService)

	// One failing listener stops them all.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(lns))
	var wg sync.WaitGroup
	for i, ln := range lns {
		wg.Go(func() {
			if err := httpserver.Serve(ctx, ln, sims[i].Handler(), httpserver.DefaultTimeouts, shutdownGrace, log); err != nil {
				errs <- fmt.Errorf("bmc %d on %s: %w", i, ln.Addr(), err)
				cancel()
			}
		})
	}
	<-ctx.Done()
	// Requests held by an injected hang must not hold up the shutdown.
	for _, s := range sims {
		s.Close()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}
