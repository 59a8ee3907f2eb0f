// Command ferric-agent-api serves Ferric's agent API (lookup and checkin) on
// the provisioning VLAN.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/ferric-metal/ferric/agent-api/agentapi"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/agents"
	"github.com/ferric-metal/ferric/conductor/startup"
	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/shared/buildinfo"
	"github.com/ferric-metal/ferric/shared/config"
	"github.com/ferric-metal/ferric/shared/httpserver"
	"github.com/ferric-metal/ferric/shared/token"
)

func main() {
	startup.Main("ferric-agent-api", func(ctx context.Context) error { return run(ctx, os.Args[1:], os.Getenv, os.Stderr) })
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, log, err := startup.Configure(config.AgentAPI, args, getenv, stderr)
	if err != nil {
		return err
	}
	keys, err := token.LoadKeys(cfg.AgentKeysFile)
	if err != nil {
		return fmt.Errorf("agent token keys (FERRIC_AGENT_KEYS_FILE): %w", err)
	}
	rules, err := agents.ParseDiscoveryRules(cfg.DiscoveryRules)
	if err != nil {
		return fmt.Errorf("FERRIC_DISCOVERY_RULES: %w", err)
	}
	allowed, err := prefixes(cfg.AgentAllowedCIDRs)
	if err != nil {
		return fmt.Errorf("FERRIC_AGENT_ALLOWED_CIDRS: %w", err)
	}
	bmcNetworks, err := prefixes(cfg.DiscoveryBMCNetworks)
	if err != nil {
		return fmt.Errorf("FERRIC_DISCOVERY_BMC_NETWORKS: %w", err)
	}
	tlsConfig, err := serverTLS(cfg.AgentTLSCertFile, cfg.AgentTLSKeyFile)
	if err != nil {
		return err
	}
	ln, err := startup.Listen(cfg.AgentListen)
	if err != nil {
		return err
	}
	defer ln.Close()
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	db, err := startup.Database(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()

	// No drivers: this process never talks to a BMC.
	c := conductor.New(db, drivers.NewRegistry(), log, conductor.Options{
		FastTrack:   cfg.FastTrack,
		QueueLimits: map[string]int{conductor.PoolAgent: cfg.AgentQueueLimit},
	})
	side, err := agents.New(c, agents.Options{
		Keys: keys, Issuer: cfg.TokenIssuer, TokenTTL: cfg.AgentTokenTTL, CheckinInterval: cfg.AgentCheckinInterval,
		Discovery: agents.DiscoveryOptions{Enabled: cfg.Discovery, Rules: rules,
			QuotaPerSource: cfg.DiscoveryQuota, QuotaWindow: cfg.DiscoveryQuotaWindow, BMCNetworks: bmcNetworks},
	})
	if err != nil {
		return err
	}
	defer side.Close()
	api, err := agentapi.New(side, log, agentapi.Options{
		AllowedSources: allowed, TrustedProxies: cfg.AgentTrustedProxies,
		RateLimit: cfg.AgentRateLimit, MaxInFlight: cfg.AgentMaxInFlight,
		BodiesPerSource: cfg.AgentBodiesPerSource,
	})
	if err != nil {
		return err
	}
	log.Info("serving agent API", "addr", ln.Addr().String(), "tls", tlsConfig != nil,
		"discovery", cfg.Discovery, "version", buildinfo.Version)
	return httpserver.Serve(ctx, ln, api.Handler(), agentapi.ServerTimeouts, cfg.ShutdownGrace, log)
}

// prefixes parses networks such as 10.20.0.0/16.
func prefixes(networks []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range networks {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// serverTLS loads the agent listener's certificate, if one is configured.
func serverTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("TLS needs both FERRIC_AGENT_TLS_CERT_FILE and FERRIC_AGENT_TLS_KEY_FILE")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("agent TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
