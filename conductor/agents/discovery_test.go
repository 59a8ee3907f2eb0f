package agents

import (
	"net/netip"
	"testing"

	"github.com/ferric-metal/ferric/conductor/inventory"
)

func TestParseDiscoveryRules(t *testing.T) {
	rules, err := ParseDiscoveryRules(DefaultDiscoveryRules)
	if err != nil {
		t.Fatal(err)
	}
	withBMC := inventory.Evidence{BMCs: []string{"fd00::5"}}
	r, ok := ruleFor(rules, withBMC)
	if !ok || r.Driver != "ipmi" || r.driverInfo(withBMC)["ipmi_address"] != "fd00::5" {
		t.Errorf("rule for a BMC: %+v %v", r, r.driverInfo(withBMC))
	}
	if r, _ := ruleFor(rules, inventory.Evidence{}); r.Driver != "fake" {
		t.Errorf("rule without a BMC: %+v", r)
	}
	for _, bad := range []string{"", "bmc_address ipmi", "vendor -> ipmi", "* -> Bad/Driver", "* -> ipmi ipmi_address={bmc_address}",
		"bmc_address -> ipmi ipmi_address={password}", "bmc_address -> ipmi ipmi_address"} {
		if _, err := ParseDiscoveryRules(bad); err == nil {
			t.Errorf("rules %q accepted", bad)
		}
	}
}

func TestDiscoveryQuotaKey(t *testing.T) {
	for in, want := range map[string]string{
		"10.20.0.5":              "10.20.0.5",
		"::ffff:10.20.0.5":       "10.20.0.5",
		"2001:db8:1:2::5":        "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::abc": "2001:db8:1:2::/64",
	} {
		if got := discoveryQuotaKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("discoveryQuotaKey(%s) = %s, want %s", in, got, want)
		}
	}
}
