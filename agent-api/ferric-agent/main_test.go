package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSettingsPrecedence(t *testing.T) {
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(cmdline, []byte("quiet ferric.api=https://kernel.example:6386 BOOTIF=01-52-54-00-00-00-01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	st, err := parseSettings([]string{"-cmdline", cmdline}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if st.agent.APIURL != "https://kernel.example:6386" || st.agent.BootMAC != "01-52-54-00-00-00-01" {
		t.Errorf("from the kernel command line: %+v", st.agent)
	}
	env["FERRIC_AGENT_API_URL"] = "https://env.example:6386"
	if st, err = parseSettings([]string{"-cmdline", cmdline}, getenv, io.Discard); err != nil || st.agent.APIURL != "https://env.example:6386" {
		t.Errorf("the environment does not win over the command line: %+v %v", st, err)
	}
	st, err = parseSettings([]string{"-cmdline", cmdline, "-api", "https://flag.example:6386", "-bootif", "52:54:00:00:00:02"}, getenv, io.Discard)
	if err != nil || st.agent.APIURL != "https://flag.example:6386" || st.agent.BootMAC != "52:54:00:00:00:02" {
		t.Errorf("flags do not win: %+v %v", st, err)
	}
}

func TestSettingsRefused(t *testing.T) {
	none := func(string) string { return "" }
	missing := filepath.Join(t.TempDir(), "none")
	for _, args := range [][]string{
		{"-cmdline", missing},                              // an unreadable command line named on purpose
		{"-api", "https://user:hunter2@agents.example"},    // credentials in the URL
		{"-api", "https://agents.example", "extra"},        // stray argument
		{"-api", "https://agents.example", "-ca", missing}, // no such CA bundle
	} {
		_, err := parseSettings(args, none, io.Discard)
		if err == nil {
			t.Errorf("%v accepted", args)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: the error prints the password: %v", args, err)
		}
	}
	if _, err := parseSettings([]string{"-h"}, none, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}
