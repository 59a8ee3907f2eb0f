package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/shared/syncbuf"
)

func TestHelp(t *testing.T) {
	var stdout, stderr syncbuf.Buffer
	if err := run(context.Background(), []string{"-help"}, &stdout, &stderr); err != nil {
		t.Fatalf("-help: %v", err)
	}
	for _, want := range []string{"Usage: ferric-redfish-sim", "-bmcs", "-latency", "own port"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{"-bmcs", "0"},
		{"-bmcs", "100000"},
		{"-power", "maybe"},
		{"-listen", "nohostport"},
		{"-listen", "10.1.2.3:8000"},
		{"-listen", "127.0.0.1:65535", "-bmcs", "2"},
		{"-no-such-flag"},
		{"extra"},
	} {
		var stdout, stderr syncbuf.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestServesBMCsUntilStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-bmcs", "3", "-systems", "2", "-username", "u", "-password", "p", "-power", "On"}, &stdout, &stderr)
	}()

	lineRE := regexp.MustCompile(`bmc (\d): (http://127\.0\.0\.1:\d+) systems: 1,2`)
	deadline := time.Now().Add(5 * time.Second)
	var urls []string
	for len(urls) < 3 && time.Now().Before(deadline) {
		urls = nil
		for _, m := range lineRE.FindAllStringSubmatch(stdout.String(), -1) {
			urls = append(urls, m[2])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(urls) != 3 || urls[0] == urls[1] {
		t.Fatalf("want 3 distinct BMC URLs, got %v; stdout:\n%s\nstderr:\n%s", urls, stdout.String(), stderr.String())
	}

	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for _, u := range urls {
		req, _ := http.NewRequest("GET", u+"/redfish/v1/Systems/2", nil)
		req.SetBasicAuth("u", "p")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var sys struct{ PowerState string }
		err = json.NewDecoder(resp.Body).Decode(&sys)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || sys.PowerState != "On" {
			t.Fatalf("%s: %d %+v %v", u, resp.StatusCode, sys, err)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
