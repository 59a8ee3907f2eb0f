package config_test

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/shared/config"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md")

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	c, _, err := config.Load(config.PublicAPI, nil, env(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicListen != "127.0.0.1:6385" || c.Auth != "jwt" || len(c.EnabledDrivers) != 1 || c.EnabledDrivers[0] != "fake" || c.ShutdownGrace != 15*time.Second {
		t.Errorf("defaults = %+v", c)
	}
	a, _, err := config.Load(config.AgentAPI, nil, env(), io.Discard)
	if err != nil || a.AgentListen != "127.0.0.1:6386" {
		t.Errorf("agent defaults = %+v, %v", a, err)
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	c, rest, err := config.Load(config.PublicAPI,
		[]string{"-public-listen", "127.0.0.1:9000", "extra"},
		env("FERRIC_PUBLIC_LISTEN", "127.0.0.1:8000", "FERRIC_ENABLED_DRIVERS", "fake, ipmi ,", "FERRIC_AUTO_MIGRATE", "true"),
		io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicListen != "127.0.0.1:9000" {
		t.Errorf("flag did not win: %s", c.PublicListen)
	}
	if strings.Join(c.EnabledDrivers, "|") != "fake|ipmi" || !c.AutoMigrate {
		t.Errorf("environment not read: %+v", c)
	}
	if len(rest) != 1 || rest[0] != "extra" {
		t.Errorf("positional args = %v", rest)
	}
}

func TestBadValuesNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		program string
		env     []string
		args    []string
		want    string
	}{
		{config.PublicAPI, []string{"FERRIC_AUTO_MIGRATE", "maybe"}, nil, "FERRIC_AUTO_MIGRATE"},
		{config.PublicAPI, nil, []string{"-public-listen", "nowhere"}, "FERRIC_PUBLIC_LISTEN"},
		{config.PublicAPI, []string{"FERRIC_AUTH", "keystone"}, nil, "FERRIC_AUTH"},
		{config.PublicAPI, []string{"FERRIC_SHUTDOWN_GRACE", "soon"}, nil, "FERRIC_SHUTDOWN_GRACE"},
		{config.AgentAPI, nil, []string{"-public-listen", "127.0.0.1:1"}, "not defined"},
	} {
		_, _, err := config.Load(tc.program, tc.args, env(tc.env...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want mention of %s", tc.env, tc.args, err, tc.want)
		}
	}
}

// TestConfigurationDoc keeps docs/configuration.md equal to the table.
func TestConfigurationDoc(t *testing.T) {
	const path = "../../docs/configuration.md"
	want := config.Markdown()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Error("docs/configuration.md is stale: run go test ./shared/config -update")
	}
}

// TestAgentFlowSettings: fast track is read by every server, its timeout
// by the operator API (which decides), automated cleaning and the erase by
// the conductor, with Ironic's defaults.
func TestAgentFlowSettings(t *testing.T) {
	for _, program := range []string{config.PublicAPI, config.AgentAPI, config.Conductor} {
		c, _, err := config.Load(program, nil, env("FERRIC_FAST_TRACK", "true"), io.Discard)
		if err != nil || !c.FastTrack {
			t.Errorf("%s: fast track %v, %v", program, c.FastTrack, err)
		}
	}
	p, _, err := config.Load(config.PublicAPI, nil, env(), io.Discard)
	if err != nil || p.FastTrackTimeout != 300*time.Second {
		t.Errorf("fast track timeout %v, %v; want Ironic's 300 s", p.FastTrackTimeout, err)
	}
	c, _, err := config.Load(config.Conductor, nil, env(), io.Discard)
	if err != nil || !c.AutomatedClean || c.CleanErase != "metadata" || c.CallbackTimeout != 30*time.Minute {
		t.Errorf("conductor defaults: automated clean %v, erase %q, callback timeout %v, %v", c.AutomatedClean, c.CleanErase, c.CallbackTimeout, err)
	}
	c, _, err = config.Load(config.Conductor, nil, env("FERRIC_AUTOMATED_CLEAN", "false", "FERRIC_CLEAN_ERASE", "full", "FERRIC_CALLBACK_TIMEOUT", "0"), io.Discard)
	if err != nil || c.AutomatedClean || c.CleanErase != "full" || c.CallbackTimeout != 0 {
		t.Errorf("conductor settings: automated clean %v, erase %q, callback timeout %v, %v", c.AutomatedClean, c.CleanErase, c.CallbackTimeout, err)
	}
	for program, bad := range map[string][]string{
		config.Conductor: {"FERRIC_CLEAN_ERASE", "shred"},
		config.PublicAPI: {"FERRIC_FAST_TRACK_TIMEOUT", "0s"},
	} {
		if _, _, err := config.Load(program, nil, env(bad...), io.Discard); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%s=%s: %v, want a refusal naming it", bad[0], bad[1], err)
		}
	}
}
