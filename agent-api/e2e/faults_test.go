package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
)

// TestAgentFaults: an agent that never checks in, a conductor killed with
// SIGKILL in the middle of a deploy, and a power off revoking the agent's
// token.
func TestAgentFaults(t *testing.T) {
	s := newStack(t, stackOptions{env: []string{
		"FERRIC_CALLBACK_TIMEOUT=15s", "FERRIC_TASK_LEASE=3s", "FERRIC_LOCK_TTL=3s",
	}})
	im := newImages(t)
	raw := rawImage(t, imageSize)

	t.Run("agent never checks in", func(t *testing.T) {
		t.Parallel()
		m, id, stopAgent := availableMachine(t, s, 30, "silent")
		stopAgent() // the machine will boot, but no agent will call
		url, sum := im.publish(t, "image-silent", raw, "raw")
		deployImage(t, s, id, url, "sha256:"+sum)
		n := waitState(t, s, id, "deploy failed", 2*time.Minute)
		if !strings.Contains(strings.ToLower(n.LastError), "timeout") {
			t.Errorf("last_error does not say the callback timed out: %q", n.LastError)
		}
		eventually(t, time.Minute, "the timed-out machine to be powered off", func() (bool, string) {
			st := m.sim.PowerState("1")
			return st == "Off", st
		})
	})

	t.Run("conductor killed mid-deploy", func(t *testing.T) {
		t.Parallel()
		m, id, _ := availableMachine(t, s, 31, "survivor")
		// A slow image keeps the agent writing while the conductor dies.
		url, sum := im.publish(t, "image-slow", raw, "raw")
		slow := httptest.NewServer(throttle(http.StripPrefix("", http.FileServer(http.Dir(im.dir))), 6<<20))
		t.Cleanup(slow.Close)
		url = strings.Replace(url, im.srv.URL, slow.URL, 1)
		deployImage(t, s, id, url, "sha256:"+sum)
		waitState(t, s, id, "wait call-back", time.Minute)
		s.kill("ferric-conductor")
		s.start("ferric-conductor-2", "ferric-conductor", "FERRIC_CONDUCTOR_NAME=conductor-2")
		waitState(t, s, id, "active", 2*time.Minute)
		if got := diskPrefix(t, m.disk, len(raw)); !bytes.Equal(got, raw) {
			t.Fatalf("the disk does not hold the image (first difference at %d)", firstDiff(got, raw))
		}
	})

	t.Run("power off revokes the token", func(t *testing.T) {
		t.Parallel()
		m, id, stopAgent := availableMachine(t, s, 32, "revoked")
		stopAgent() // this test plays the agent itself
		url, sum := im.publish(t, "image-revoked", raw, "raw")
		deployImage(t, s, id, url, "sha256:"+sum)
		waitState(t, s, id, "wait call-back", time.Minute)

		inv, err := m.profile.Machine()
		if err != nil {
			t.Fatal(err)
		}
		var found agentwire.LookupResponse
		if code := postJSON(t, s.agentURL+agentwire.LookupPath, "", inv.Inventory, &found); code != 200 || found.Token == agentwire.MaskedToken {
			t.Fatalf("lookup: %d, token %q", code, found.Token)
		}
		checkin := agentwire.CheckinRequest{AgentVersion: "e2e", Status: agentwire.StatusIdle}
		var next agentwire.CheckinResponse
		if code := postJSON(t, s.agentURL+agentwire.CheckinPath, found.Token, checkin, &next); code != 200 || next.Action != agentwire.ActionDeploy {
			t.Fatalf("checkin before the power off: %d, action %q", code, next.Action)
		}
		if err := nodes.ChangePowerState(context.Background(), s.client, id, nodes.PowerStateOpts{Target: nodes.PowerOff}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "the token to be revoked by the power off", func() (bool, string) {
			code := postJSON(t, s.agentURL+agentwire.CheckinPath, found.Token, checkin, &next)
			return code == http.StatusUnauthorized, http.StatusText(code)
		})
		if st := m.sim.PowerState("1"); st != "Off" {
			t.Errorf("the BMC says %s after the power off", st)
		}
	})
}

// throttle serves h at about bytesPerSecond.
func throttle(h http.Handler, bytesPerSecond int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&slowWriter{ResponseWriter: w, rate: bytesPerSecond}, r)
	})
}

type slowWriter struct {
	http.ResponseWriter
	rate int
}

func (s *slowWriter) Write(p []byte) (int, error) {
	const chunk = 64 << 10
	total := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		w, err := s.ResponseWriter.Write(p[:n])
		total += w
		if err != nil {
			return total, err
		}
		p = p[n:]
		time.Sleep(time.Duration(float64(time.Second) * float64(n) / float64(s.rate)))
	}
	return total, nil
}

// postJSON posts body as an agent would and decodes a 200's answer.
func postJSON(t *testing.T, url, token string, body, out any) int {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(answer, out); err != nil {
			t.Fatalf("answer of %s: %v: %s", url, err, answer)
		}
	}
	return resp.StatusCode
}
