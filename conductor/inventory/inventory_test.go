package inventory

import (
	"bytes"
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/shared/fault"
)

const sampleInventory = `{
  "interfaces": [
    {"name": "eno1", "mac_address": "52:54:00:12:34:56", "ipv4_address": "10.0.0.15", "ipv6_address": null,
     "has_carrier": true, "lldp": [[1, "04aabb"]], "vendor": "0x8086", "product": "0x1572", "client_id": null,
     "biosdevname": "em1", "speed_mbps": 10000, "pci_address": "0000:18:00.0", "driver": "i40e"},
    {"name": "bond0", "mac_address": "52-54-00-12-34-56"},
    {"name": "ib0", "mac_address": "80:00:02:08:fe:80:00:00:00:00:00:00:f4:52:14:03:00:8b:9e:11"}
  ],
  "cpu": {"model_name": "Xeon", "frequency": "3900.0000", "count": 80, "architecture": "x86_64", "flags": ["fpu"], "socket_count": 2},
  "disks": [{"name": "/dev/sda", "size": 479559942144, "rotational": false, "hctl": null},
            {"name": "/dev/sdb", "size": 1000204886016}],
  "memory": {"total": 201326592000, "physical_mb": 196608},
  "bmc_address": "10.10.0.15", "bmc_v6address": "::/0", "bmc_mac": "d0:94:66:aa:bb:cc",
  "system_vendor": {"product_name": "PowerEdge R640", "serial_number": "ABC1234", "manufacturer": "Dell Inc.",
                    "firmware": {"vendor": "Dell Inc.", "version": "2.19.1", "build_date": "05/30/2023"}},
  "boot": {"current_boot_mode": "uefi", "pxe_interface": "01-52-54-00-aa-bb-cc"},
  "hostname": "localhost.localdomain"
}`

func TestParse(t *testing.T) {
	// IPA's form: its bond0 repeats a member's MAC, which counts once.
	data, err := Parse([]byte(`{"inventory": `+sampleInventory+`}`), FormatIPA)
	if err != nil {
		t.Fatal(err)
	}
	// Ferric's own agent lists each MAC once.
	if _, err := Parse([]byte(sampleInventory), FormatNative); err == nil || !strings.Contains(err.Error(), "same MAC address 52:54:00:12:34:56") {
		t.Errorf("native inventory with a repeated MAC: %v, want refused", err)
	}
	ev := EvidenceOf(&data.Inventory)
	if !slices.Equal(ev.MACs, []string{"52:54:00:12:34:56", "52:54:00:aa:bb:cc"}) {
		t.Errorf("MACs %v: want the valid ones, once, plus the PXE interface", ev.MACs)
	}
	if !slices.Equal(ev.BMCs, []string{"10.10.0.15"}) || ev.Serial != "ABC1234" {
		t.Errorf("evidence %+v", ev)
	}
	props := Properties(data)
	want := map[string]any{"cpus": int64(80), "cpu_arch": "x86_64", "memory_mb": int64(196608), "local_gb": int64(445)}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("property %s = %v (%T), want %v", k, props[k], props[k], v)
		}
	}
	stored, _ := json.Marshal(data.Stored)
	if !bytes.Contains(stored, []byte(`"lldp":[[1,"04aabb"]]`)) {
		t.Errorf("stored inventory lost data: %s", stored)
	}

	ipa := `{"inventory": ` + strings.Replace(sampleInventory, `"hostname"`, `"new_in_ipa_99": 1, "hostname"`, 1) +
		`, "root_disk": {"name": "/dev/sdb", "size": 1000204886016}, "logs": "H4sI", "error": null, "pci_devices": []}`
	data, err = Parse([]byte(ipa), FormatIPA)
	if err != nil {
		t.Fatal(err)
	}
	if _, hasLogs := data.PluginData["logs"]; hasLogs || data.PluginData["root_disk"] == nil {
		t.Errorf("plugin data %v: want root_disk, no logs", data.PluginData)
	}
	if props := Properties(data); props["local_gb"] != int64(930) {
		t.Errorf("local_gb from IPA's root_disk: %v", props["local_gb"])
	}
	if _, err := Parse([]byte(strings.Replace(sampleInventory, `"hostname"`, `"new_in_ipa_99": 1, "hostname"`, 1)), FormatNative); err == nil {
		t.Error("native inventory with an unknown member accepted")
	}
}

func TestEvidenceIgnoresPlaceholders(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, bad := range []string{"0.0.0.0", "::/0", "::", "127.0.0.1", "", "bmc.example.com", "224.0.0.1"} {
		if a, ok := bmcAddress(s(bad)); ok {
			t.Errorf("BMC address %q accepted as %q", bad, a)
		}
	}
	if a, ok := bmcAddress(s(" ::ffff:10.1.2.3 ")); !ok || a != "10.1.2.3" {
		t.Errorf("IPv4-mapped BMC address: %q %v", a, ok)
	}
	for _, bad := range []string{"To Be Filled By O.E.M.", "0000000000", "none", "  ", "ab", "Default string"} {
		if got := normalizeSerial(bad); got != "" {
			t.Errorf("serial %q kept as %q", bad, got)
		}
	}
}

func TestDecideMatch(t *testing.T) {
	hit := func(kind, value string, node int64) Hit {
		return Hit{Kind: kind, Value: value, NodeID: node}
	}
	mac, bmc, serial := KindMAC, KindBMC, KindSerial
	for _, tc := range []struct {
		name    string
		hits    []Hit
		verdict Verdict
		node    int64
	}{
		{"nothing", nil, NoMatch, 0},
		{"one MAC", []Hit{hit(mac, "a", 1)}, Found, 1},
		{"two MACs of one node", []Hit{hit(mac, "a", 1), hit(mac, "b", 1)}, Found, 1},
		{"MACs of two nodes", []Hit{hit(mac, "a", 1), hit(mac, "b", 1), hit(mac, "c", 2)}, Conflict, 0},
		{"MAC of one, BMC of another", []Hit{hit(mac, "a", 1), hit(bmc, "x", 2)}, Conflict, 0},
		{"aggregator: MAC and BMC beat BMC", []Hit{hit(bmc, "x", 2), hit(mac, "a", 1), hit(bmc, "x", 1), hit(bmc, "x", 3)}, Found, 1},
		{"shared BMC alone", []Hit{hit(bmc, "x", 2), hit(bmc, "x", 3)}, Tie, 0},
		{"same serial twice", []Hit{hit(serial, "s", 4), hit(serial, "s", 5)}, Tie, 0},
		{"serial of another node", []Hit{hit(mac, "a", 1), hit(serial, "s", 5)}, Conflict, 0},
		{"everything on one node", []Hit{hit(mac, "a", 7), hit(bmc, "x", 7), hit(serial, "s", 7)}, Found, 7},
	} {
		got := Decide(tc.hits)
		if got.Verdict != tc.verdict || got.NodeID != tc.node {
			t.Errorf("%s: %v node %d (%s), want %v node %d", tc.name, got.Verdict, got.NodeID, got.Detail, tc.verdict, tc.node)
		}
		if (got.Verdict == Conflict || got.Verdict == Tie) && len(got.Involved) != 2 {
			t.Errorf("%s: involved %v", tc.name, got.Involved)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(sampleInventory), false)
	f.Add([]byte(`{"inventory": `+sampleInventory+`, "root_disk": {"size": 5}}`), true)
	f.Add([]byte(`{"interfaces": [{"mac_address": "zz"}], "bmc_address": "0.0.0.0", "bmc_v6address": "::/0"}`), false)
	f.Add([]byte(`{"interfaces": [{"mac_address": "52:54:00:12:34:56"}, {"mac_address": "52:54:00:12:34:56"}]}`), false)
	f.Add([]byte(`{"interfaces": [{"mac_address": "a\u0000"}]}`), false)
	f.Fuzz(func(t *testing.T, body []byte, ipa bool) {
		format := FormatNative
		if ipa {
			format = FormatIPA
		}
		data, err := Parse(body, format)
		if err != nil {
			if k := fault.KindOf(err); k != fault.Invalid {
				t.Fatalf("refusal of kind %v (%v): every refusal must be a client error", k, err)
			}
			return
		}
		if n := len(data.Inventory.Interfaces); n == 0 || n > maxInterfaces {
			t.Fatalf("accepted %d interfaces", n)
		}
		stored, err := json.Marshal(data.Stored)
		if err != nil || bytes.Contains(stored, []byte(`\u0000`)) {
			t.Fatalf("stored document not storable: %v %q", err, stored)
		}
		checkNumbers(t, data.Stored)
		ev := EvidenceOf(&data.Inventory)
		if len(ev.MACs) > MaxEvidenceMACs {
			t.Fatalf("%d MACs of evidence", len(ev.MACs))
		}
		for _, m := range ev.MACs {
			if again, ok := NormalizeMAC(m); !ok || again != m {
				t.Fatalf("evidence MAC %q is not normalised", m)
			}
		}
		for _, b := range ev.BMCs {
			a, err := netip.ParseAddr(b)
			if err != nil || a.IsUnspecified() || a.String() != b {
				t.Fatalf("evidence BMC %q", b)
			}
		}
		for k, v := range Properties(data) {
			if n, ok := v.(int64); ok && n < 0 {
				t.Fatalf("property %s = %d", k, n)
			}
		}
	})
}

func FuzzDecideMatch(f *testing.F) {
	f.Add([]byte{0, 1, 1})
	f.Add([]byte{0, 1, 1, 1, 2, 2})
	f.Add([]byte{1, 9, 2, 0, 1, 1, 1, 9, 1, 1, 9, 3})
	f.Add([]byte{2, 5, 4, 2, 5, 5})
	f.Fuzz(func(t *testing.T, raw []byte) {
		kinds := []string{KindMAC, KindBMC, KindSerial}
		var hits []Hit
		sets := map[int64]map[string]bool{}
		for i := 0; i+2 < len(raw) && len(hits) < 64; i += 3 {
			h := Hit{Kind: kinds[int(raw[i])%3], Value: string('a' + rune(raw[i+1]%8)), NodeID: int64(raw[i+2] % 6)}
			hits = append(hits, h)
			if sets[h.NodeID] == nil {
				sets[h.NodeID] = map[string]bool{}
			}
			sets[h.NodeID][h.Kind+" "+h.Value] = true
		}
		got := Decide(hits)
		reversed := slices.Clone(hits)
		slices.Reverse(reversed)
		if again := Decide(reversed); again.Verdict != got.Verdict || again.NodeID != got.NodeID {
			t.Fatalf("order changed the outcome: %+v vs %+v", got, again)
		}
		switch got.Verdict {
		case NoMatch:
			if len(hits) != 0 {
				t.Fatalf("no match from %d hits", len(hits))
			}
		case Found:
			win := sets[got.NodeID]
			for id, set := range sets {
				if id == got.NodeID {
					continue
				}
				if len(set) >= len(win) {
					t.Fatalf("node %d won with %v over node %d with %v", got.NodeID, win, id, set)
				}
				for item := range set {
					if !win[item] {
						t.Fatalf("node %d won though node %d has %q it lacks", got.NodeID, id, item)
					}
				}
			}
		case Conflict, Tie:
			if len(got.Involved) != 2 || got.Involved[0] == got.Involved[1] || sets[got.Involved[0]] == nil || sets[got.Involved[1]] == nil {
				t.Fatalf("ambiguity between %v", got.Involved)
			}
		}
	})
}

// checkNumbers fails when a number of v is outside what PostgreSQL's jsonb
// stores compactly (a float64's range).
func checkNumbers(t *testing.T, v any) {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || len(x) > 32 || (f != 0 && math.Abs(f) < 1e-308) {
			t.Fatalf("number %s accepted", x)
		}
	case map[string]any:
		for _, e := range x {
			checkNumbers(t, e)
		}
	case []any:
		for _, e := range x {
			checkNumbers(t, e)
		}
	}
}
