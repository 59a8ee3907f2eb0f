package agentapi_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/agents"
	"github.com/ferric-metal/ferric/shared/pgtest"
)

// strictly decodes body into v, refusing members v does not have.
func strictly(t *testing.T, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
}

// TestNativeBodiesAreAgentwires: the native form speaks agentwire's bodies,
// which ferric-agent uses: an agentwire.CheckinRequest with every member
// set is accepted, and the lookup and checkin answers have exactly
// agentwire's members, args always an object ({} when empty).
func TestNativeBodiesAreAgentwires(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	s := newStack(t, db, stackOptions{})
	machine := inv{macs: []string{"52:54:00:00:0c:01"}}
	seedNode(t, db, nodeSeed{state: conductor.StateWaitCallback, macs: machine.macs,
		instanceInfo: map[string]any{"image_source": "http://images.example/os.qcow2", "image_checksum": "sha256:9f86"}})

	r := s.lookup(t, machine)
	var found agentwire.LookupResponse
	strictly(t, r.Body, &found)
	if r.Status != 200 || found.Node.UUID != found.NodeUUID || len(found.Token) < 32 || found.CheckinInterval != 30 ||
		found.Node.ProvisionState != conductor.StateWaitCallback || found.Node.Properties == nil {
		t.Fatalf("lookup: %d %s", r.Status, r.Body)
	}

	checkin := func(req agentwire.CheckinRequest) (int, []byte) {
		b, _ := json.Marshal(req)
		r := do(t, defaultClient, "POST", s.url+agentwire.CheckinPath, b, "Authorization", "Bearer "+found.Token)
		return r.Status, r.Body
	}
	status, body := checkin(agentwire.CheckinRequest{AgentVersion: "ferric-agent 1.0", Status: agentwire.StatusBusy})
	var next agentwire.CheckinResponse
	strictly(t, body, &next)
	var args agentwire.DeployArgs
	strictly(t, next.Args, &args)
	if status != 200 || next.Action != agentwire.ActionDeploy || args.ImageSource != "http://images.example/os.qcow2" ||
		args.ImageChecksum != "sha256:9f86" {
		t.Fatalf("first checkin: %d %s", status, body)
	}
	status, body = checkin(agentwire.CheckinRequest{AgentVersion: "ferric-agent 1.0", Status: agentwire.StatusBusy,
		LastCommand: &agentwire.CommandResult{Name: agentwire.ActionDeploy, Status: agentwire.CommandRunning}})
	if want := `{"action":"wait","args":{},"checkin_interval":30}`; status != 200 || string(body) != want {
		t.Errorf("checkin while deploying: %d %s, want %s", status, body, want)
	}
	status, body = checkin(agentwire.CheckinRequest{AgentVersion: "ferric-agent 1.0", Status: agentwire.StatusError,
		LastCommand: &agentwire.CommandResult{Name: agentwire.ActionDeploy, Status: agentwire.CommandFailed, Error: "write image: no space"}})
	strictly(t, body, &next)
	if status != 200 || next.Action != agents.ActionWait || string(next.Args) != "{}" {
		t.Errorf("checkin reporting failure: %d %s", status, body)
	}
}
