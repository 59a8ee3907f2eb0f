package redfishsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

// bmc is a simulator served on 127.0.0.1 with a client for it.
type bmc struct {
	sim    *redfishsim.Simulator
	srv    *httptest.Server
	client *http.Client
}

func start(t *testing.T, opts redfishsim.Options) *bmc {
	t.Helper()
	sim := redfishsim.New(opts)
	srv := httptest.NewServer(sim.Handler())
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
		client.CloseIdleConnections()
	})
	return &bmc{sim: sim, srv: srv, client: client}
}

// call sends a request with Basic admin/password credentials unless
// header already carries other authentication, and decodes a JSON answer.
func (b *bmc) call(t *testing.T, method, path string, body any, header http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		buf, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, b.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if header == nil {
		req.SetBasicAuth("admin", "password")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v: %q", method, path, err, raw)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func noAuth() http.Header { return http.Header{} }

func TestServiceRootIsPublicAndResourcesNeedAuth(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{})
	if code, _, root := b.call(t, "GET", "/redfish/v1/", nil, noAuth()); code != 200 || root["Systems"] == nil {
		t.Fatalf("service root: %d %v", code, root)
	}
	if code, _, _ := b.call(t, "GET", "/redfish/v1", nil, noAuth()); code != 200 {
		t.Fatalf("service root without slash: %d", code)
	}
	code, hdr, body := b.call(t, "GET", "/redfish/v1/Systems", nil, noAuth())
	if code != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") || body["error"] == nil {
		t.Fatalf("without credentials: %d %v %v", code, hdr, body)
	}
	bad := http.Header{}
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth("admin", "wrong")
	bad.Set("Authorization", req.Header.Get("Authorization"))
	if code, _, _ := b.call(t, "GET", "/redfish/v1/Systems/1", nil, bad); code != 401 {
		t.Fatalf("bad password: %d", code)
	}
	if got := b.sim.Unauthorized(); got != 2 {
		t.Fatalf("Unauthorized() = %d, want 2", got)
	}
	code, _, coll := b.call(t, "GET", "/redfish/v1/Systems/", nil, nil)
	if code != 200 || coll["Members@odata.count"] != float64(1) {
		t.Fatalf("systems: %d %v", code, coll)
	}
	if code, _, _ := b.call(t, "GET", "/redfish/v1/Systems/9", nil, nil); code != 404 {
		t.Fatalf("unknown system: %d", code)
	}
	if got := b.sim.RequestCount("GET", "/redfish/v1/Systems/"); got != 2 {
		t.Fatalf("RequestCount(Systems) = %d, want 2 (%v)", got, b.sim.Routes())
	}
}

func TestResetChangesPowerAndRespectsAllowableValues(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{ResetTypes: []string{"On", "ForceOff"}})
	_, _, sys := b.call(t, "GET", "/redfish/v1/Systems/1", nil, nil)
	reset := sys["Actions"].(map[string]any)["#ComputerSystem.Reset"].(map[string]any)
	if got := reset["ResetType@Redfish.AllowableValues"]; len(got.([]any)) != 2 {
		t.Fatalf("allowable reset types %v", got)
	}
	target := reset["target"].(string)
	if sys["PowerState"] != "Off" {
		t.Fatalf("initial power %v", sys["PowerState"])
	}
	if code, _, _ := b.call(t, "POST", target, map[string]string{"ResetType": "On"}, nil); code != 204 {
		t.Fatalf("reset On: %d", code)
	}
	if got := b.sim.PowerState("1"); got != "On" {
		t.Fatalf("power after On = %q", got)
	}
	code, _, e := b.call(t, "POST", target, map[string]string{"ResetType": "GracefulShutdown"}, nil)
	if code != 400 || !strings.Contains(jsonOf(e), "ActionParameterNotSupported") {
		t.Fatalf("disallowed reset: %d %v", code, e)
	}
	if code, _, _ := b.call(t, "POST", target, map[string]string{}, nil); code != 400 {
		t.Fatalf("reset without ResetType: %d", code)
	}
	if b.sim.PowerState("1") != "On" {
		t.Fatal("a refused reset changed the power state")
	}
	if got := b.sim.ResetHistory("1"); !slices.Equal(got, []string{"On"}) {
		t.Fatalf("reset history %v", got)
	}
}

func TestEveryResetType(t *testing.T) {
	t.Parallel()
	cases := []struct {
		from, reset, want string
		boots             int
	}{
		{"Off", "On", "On", 1}, {"On", "On", "On", 0},
		{"On", "ForceOff", "Off", 0}, {"On", "GracefulShutdown", "Off", 0},
		{"On", "GracefulRestart", "On", 1}, {"On", "ForceRestart", "On", 1},
		{"Off", "ForceRestart", "On", 1}, {"On", "PowerCycle", "On", 1},
		{"On", "PushPowerButton", "Off", 0}, {"Off", "PushPowerButton", "On", 1},
		{"On", "Nmi", "On", 0}, {"Off", "ForceOn", "On", 1},
	}
	for _, c := range cases {
		b := start(t, redfishsim.Options{InitialPower: c.from, ResetTypes: []string{c.reset}})
		code, _, _ := b.call(t, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", map[string]string{"ResetType": c.reset}, nil)
		if code != 204 || b.sim.PowerState("1") != c.want || len(b.sim.Boots("1")) != c.boots {
			t.Errorf("%s from %s: code %d, power %s, boots %v; want %s and %d boots",
				c.reset, c.from, code, b.sim.PowerState("1"), b.sim.Boots("1"), c.want, c.boots)
		}
	}
}

func TestIgnoreGracefulAndUnimplementedResetType(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{InitialPower: "On", IgnoreGraceful: true, ResetTypes: []string{"GracefulShutdown", "Suspend"}})
	if code, _, _ := b.call(t, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", map[string]string{"ResetType": "GracefulShutdown"}, nil); code != 204 {
		t.Fatalf("graceful shutdown: %d", code)
	}
	if b.sim.PowerState("1") != "On" {
		t.Fatal("IgnoreGraceful: the system powered off")
	}
	if code, _, _ := b.call(t, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", map[string]string{"ResetType": "Suspend"}, nil); code != 501 {
		t.Fatalf("unimplemented reset type: %d, want 501", code)
	}
}

func TestBootOverridePatchAndOneTimeUse(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{})
	patch := map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}
	if code, _, _ := b.call(t, "PATCH", "/redfish/v1/Systems/1", patch, nil); code != 204 {
		t.Fatalf("patch: %d", code)
	}
	if got := b.sim.Boot("1"); got != (redfishsim.BootSettings{Target: "Pxe", Enabled: "Once", Mode: "UEFI"}) {
		t.Fatalf("boot after patch %+v", got)
	}
	if _, hasMode := b.sim.LastPatch("1")["Boot"].(map[string]any)["BootSourceOverrideMode"]; hasMode {
		t.Fatal("LastPatch invented a mode")
	}
	_, _, sys := b.call(t, "GET", "/redfish/v1/Systems/1", nil, nil)
	boot := sys["Boot"].(map[string]any)
	if boot["BootSourceOverrideTarget"] != "Pxe" || boot["BootSourceOverrideEnabled"] != "Once" {
		t.Fatalf("boot read back %v", boot)
	}
	b.call(t, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", map[string]string{"ResetType": "On"}, nil)
	if got := b.sim.Boots("1"); !slices.Equal(got, []string{"Pxe"}) {
		t.Fatalf("boots %v", got)
	}
	if got := b.sim.Boot("1"); got.Enabled != "Disabled" || got.Target != "None" {
		t.Fatalf("one-time override not used up: %+v", got)
	}

	for _, bad := range []map[string]any{
		{"Boot": map[string]any{"BootSourceOverrideTarget": "Floppy"}},
		{"Boot": map[string]any{"BootSourceOverrideEnabled": "Sometimes"}},
		{"Boot": map[string]any{"BootSourceOverrideMode": "uefi"}},
		{"Boot": map[string]any{"BootOrder": []string{"x"}}},
		{"Boot": "Pxe"},
		{"PowerState": "On"},
	} {
		if code, _, _ := b.call(t, "PATCH", "/redfish/v1/Systems/1", bad, nil); code != 400 {
			t.Errorf("patch %v: %d, want 400", bad, code)
		}
	}
	if got := b.sim.Boot("1"); got.Target != "None" {
		t.Fatalf("a refused patch changed boot: %+v", got)
	}
}

func TestRestrictedAndOmittedAllowableValues(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{BootTargets: []string{"None", "Pxe"}, OmitAllowableValues: true})
	_, _, sys := b.call(t, "GET", "/redfish/v1/Systems/1", nil, nil)
	if strings.Contains(jsonOf(sys), "AllowableValues") {
		t.Fatalf("annotations not omitted: %v", sys)
	}
	if code, _, _ := b.call(t, "PATCH", "/redfish/v1/Systems/1", map[string]any{"Boot": map[string]any{"BootSourceOverrideTarget": "Cd"}}, nil); code != 400 {
		t.Fatalf("disallowed target: %d", code)
	}
}

func TestDelayedPowerWithTransitionStates(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{PowerDelay: 150 * time.Millisecond, TransitionStates: true})
	b.call(t, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", map[string]string{"ResetType": "On"}, nil)
	if got := b.sim.PowerState("1"); got != "PoweringOn" {
		t.Fatalf("during delay: %q", got)
	}
	time.Sleep(200 * time.Millisecond)
	if got := b.sim.PowerState("1"); got != "On" {
		t.Fatalf("after delay: %q", got)
	}
	b2 := start(t, redfishsim.Options{PowerDelay: time.Hour, InitialPower: "On"})
	b2.call(t, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", map[string]string{"ResetType": "ForceOff"}, nil)
	if got := b2.sim.PowerState("1"); got != "On" {
		t.Fatalf("without TransitionStates the old state shows: %q", got)
	}
}

func TestSessions(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{SessionService: true, MaxSessions: 1})
	code, _, _ := b.call(t, "POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": "admin", "Password": "nope"}, noAuth())
	if code != 401 {
		t.Fatalf("bad login: %d", code)
	}
	code, hdr, sess := b.call(t, "POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": "admin", "Password": "password"}, noAuth())
	token, location := hdr.Get("X-Auth-Token"), hdr.Get("Location")
	if code != 201 || token == "" || location == "" || sess["Id"] == nil {
		t.Fatalf("login: %d %v %v", code, hdr, sess)
	}
	if strings.Contains(jsonOf(sess), "password") {
		t.Fatal("session resource shows the password")
	}
	auth := http.Header{"X-Auth-Token": {token}}
	if code, _, _ := b.call(t, "GET", "/redfish/v1/Systems/1", nil, auth); code != 200 {
		t.Fatalf("with token: %d", code)
	}
	if code, _, _ := b.call(t, "GET", "/redfish/v1/Systems/1", nil, http.Header{"X-Auth-Token": {"forged"}}); code != 401 {
		t.Fatalf("forged token: %d", code)
	}
	if code, _, _ := b.call(t, "POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": "admin", "Password": "password"}, noAuth()); code != 503 {
		t.Fatalf("login past MaxSessions: %d, want 503", code)
	}
	if code, _, _ := b.call(t, "GET", location, nil, auth); code != 200 {
		t.Fatalf("session resource: %d", code)
	}
	if code, _, _ := b.call(t, "DELETE", location, nil, auth); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if b.sim.OpenSessions() != 0 {
		t.Fatal("session still open after logout")
	}
	if code, _, _ := b.call(t, "GET", "/redfish/v1/Systems/1", nil, auth); code != 401 {
		t.Fatalf("token after logout: %d", code)
	}

	plain := start(t, redfishsim.Options{})
	if code, _, _ := plain.call(t, "POST", "/redfish/v1/SessionService/Sessions", map[string]string{"UserName": "admin", "Password": "password"}, noAuth()); code != 401 && code != 404 && code != 405 {
		t.Fatalf("login without SessionService: %d", code)
	}
	if _, _, root := plain.call(t, "GET", "/redfish/v1/", nil, noAuth()); root["SessionService"] != nil || root["Links"] != nil {
		t.Fatalf("root advertises sessions: %v", root)
	}
}

func TestBiosAndVirtualMedia(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{BIOSAttributes: map[string]any{"Answer": 42}, VirtualMediaImage: "http://images.example/boot.iso"})
	_, _, bios := b.call(t, "GET", "/redfish/v1/Systems/1/Bios", nil, nil)
	if attrs := bios["Attributes"].(map[string]any); attrs["Answer"] != float64(42) || len(attrs) != 1 {
		t.Fatalf("bios attributes %v", attrs)
	}
	_, _, cd := b.call(t, "GET", "/redfish/v1/Managers/BMC/VirtualMedia/Cd", nil, nil)
	if cd["Inserted"] != true || cd["Image"] != "http://images.example/boot.iso" {
		t.Fatalf("cd %v", cd)
	}
	if code, _, _ := b.call(t, "POST", "/redfish/v1/Managers/BMC/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia", map[string]any{}, nil); code != 204 {
		t.Fatalf("eject: %d", code)
	}
	if img, ins := b.sim.VirtualMedia(); img != "" || ins || b.sim.Ejects() != 1 {
		t.Fatalf("after eject: %q %v %d", img, ins, b.sim.Ejects())
	}
	if code, _, _ := b.call(t, "POST", "/redfish/v1/Managers/BMC/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia", map[string]any{"Image": "http://x/y.iso"}, nil); code != 204 {
		t.Fatalf("insert: %d", code)
	}
	if img, ins := b.sim.VirtualMedia(); img != "http://x/y.iso" || !ins {
		t.Fatalf("after insert: %q %v", img, ins)
	}
	_, _, mgr := b.call(t, "GET", "/redfish/v1/Managers/BMC", nil, nil)
	if mgr["VirtualMedia"] == nil {
		t.Fatalf("manager %v", mgr)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{})

	b.sim.FailNext(2, 503)
	for range 2 {
		if code, _, body := b.call(t, "GET", "/redfish/v1/Systems/1", nil, nil); code != 503 || body["error"] == nil {
			t.Fatalf("injected 503: %d %v", code, body)
		}
	}
	if code, _, _ := b.call(t, "GET", "/redfish/v1/Systems/1", nil, nil); code != 200 {
		t.Fatalf("after the faults ran out: %d", code)
	}

	b.sim.Inject(redfishsim.Fault{Kind: redfishsim.FaultStatus, Method: "POST", Path: "ComputerSystem.Reset"})
	if code, _, _ := b.call(t, "GET", "/redfish/v1/Systems/1", nil, nil); code != 200 {
		t.Fatalf("a GET took a POST-only fault: %d", code)
	}
	if code, _, _ := b.call(t, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", map[string]string{"ResetType": "On"}, nil); code != 500 {
		t.Fatalf("matching fault: %d, want default 500", code)
	}
	if b.sim.PowerState("1") != "Off" {
		t.Fatal("a failed reset changed state")
	}

	b.sim.GarbageNext(1)
	resp, err := b.client.Get(b.srv.URL + "/redfish/v1/")
	if err != nil {
		t.Fatal(err)
	}
	var v any
	decodeErr := json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if resp.StatusCode != 200 || decodeErr == nil {
		t.Fatalf("garbage: %d, decode error %v", resp.StatusCode, decodeErr)
	}

	// Count 2: net/http retries an idempotent request once when a reused
	// connection closes before answering.
	b.sim.Inject(redfishsim.Fault{Kind: redfishsim.FaultDrop, Count: 2})
	if _, err := b.client.Get(b.srv.URL + "/redfish/v1/"); err == nil {
		t.Fatal("dropped connection: no error")
	}
	b.sim.ClearFaults()

	b.sim.HangNext(1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", b.srv.URL+"/redfish/v1/", nil)
	began := time.Now()
	_, err = b.client.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) > 5*time.Second {
		t.Fatalf("hang: %v after %v", err, time.Since(began))
	}
	b.sim.ClearFaults()
	b.sim.HangNext(5)
	b.sim.ClearFaults()
	if code, _, _ := b.call(t, "GET", "/redfish/v1/", nil, nil); code != 200 {
		t.Fatalf("after ClearFaults: %d", code)
	}
}

func TestCloseReleasesHangingRequests(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{})
	b.sim.HangNext(1)
	done := make(chan error, 1)
	go func() {
		resp, err := b.client.Get(b.srv.URL + "/redfish/v1/")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for b.sim.Requests() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	b.sim.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a released hang answered normally; want a dropped connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the hanging request")
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{Latency: 80 * time.Millisecond})
	began := time.Now()
	b.call(t, "GET", "/redfish/v1/", nil, nil)
	if d := time.Since(began); d < 80*time.Millisecond {
		t.Fatalf("latency not applied: %v", d)
	}
	b.sim.SetLatency(0)
	began = time.Now()
	b.call(t, "GET", "/redfish/v1/", nil, nil)
	if d := time.Since(began); d >= 80*time.Millisecond {
		t.Fatalf("SetLatency(0) not applied: %v", d)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	b := start(t, redfishsim.Options{Systems: 4})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			id := b.sim.SystemIDs()[i%4]
			rt := []string{"On", "ForceOff"}[i%2]
			code, _, _ := b.call(t, "POST", "/redfish/v1/Systems/"+id+"/Actions/ComputerSystem.Reset", map[string]string{"ResetType": rt}, nil)
			if code != 204 {
				t.Errorf("reset: %d", code)
			}
			b.call(t, "GET", "/redfish/v1/Systems/"+id, nil, nil)
			_ = b.sim.PowerState(id)
		})
	}
	wg.Wait()
	if got := b.sim.Requests(); got != 80 {
		t.Fatalf("Requests() = %d, want 80", got)
	}
}

// TestGofishSpeaksToTheSimulator checks the simulator against the Redfish
// client library the driver uses, with Basic auth and with sessions.
func TestGofishSpeaksToTheSimulator(t *testing.T) {
	t.Parallel()
	for _, basic := range []bool{true, false} {
		b := start(t, redfishsim.Options{SessionService: true, Systems: 2})
		c, err := gofish.ConnectContext(context.Background(), gofish.ClientConfig{
			Endpoint: b.srv.URL, Username: "admin", Password: "password", BasicAuth: basic,
			HTTPClient: b.client,
		})
		if err != nil {
			t.Fatalf("basic=%v: connect: %v", basic, err)
		}
		systems, err := c.Service.Systems()
		if err != nil || len(systems) != 2 {
			t.Fatalf("systems: %v %v", len(systems), err)
		}
		var s1 *schemas.ComputerSystem
		for _, s := range systems {
			if s.ID == "1" {
				s1 = s
			}
		}
		if _, err := s1.Reset(schemas.OnResetType); err != nil {
			t.Fatalf("reset: %v", err)
		}
		if _, err := s1.Reset(schemas.PowerCycleResetType); err == nil {
			t.Fatal("gofish accepted a reset type outside AllowableValues")
		}
		if err := s1.SetBoot(&schemas.Boot{BootSourceOverrideTarget: schemas.CdBootSource, BootSourceOverrideEnabled: schemas.ContinuousBootSourceOverrideEnabled}); err != nil {
			t.Fatalf("set boot: %v", err)
		}
		bios, err := s1.Bios()
		if err != nil || bios.Attributes["BootMode"] != "Uefi" {
			t.Fatalf("bios: %v %v", bios, err)
		}
		managers, err := c.Service.Managers()
		if err != nil || len(managers) != 1 {
			t.Fatalf("managers: %v", err)
		}
		media, err := managers[0].VirtualMedia()
		if err != nil || len(media) != 1 || !media[0].SupportsMediaEject {
			t.Fatalf("virtual media: %v %v", media, err)
		}
		c.Logout()
		if b.sim.PowerState("1") != "On" || b.sim.Boot("1").Target != "Cd" || b.sim.OpenSessions() != 0 {
			t.Fatalf("basic=%v: power %s, boot %+v, sessions %d", basic, b.sim.PowerState("1"), b.sim.Boot("1"), b.sim.OpenSessions())
		}
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
