package redfish

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/drivers"
	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

func TestIdentityAndProperties(t *testing.T) {
	t.Parallel()
	d := New()
	defer d.Close()
	if d.Name() != "redfish" || d.Description() == "" {
		t.Fatalf("name %q, description %q", d.Name(), d.Description())
	}
	var names []string
	for _, p := range d.Properties() {
		names = append(names, p.Name)
		if p.Description == "" {
			t.Errorf("property %s has no description", p.Name)
		}
		if p.Required != (p.Name == keyAddress) {
			t.Errorf("property %s: Required = %v", p.Name, p.Required)
		}
	}
	if !slices.Equal(names, knownKeys) {
		t.Fatalf("Properties documents %v, the driver reads %v", names, knownKeys)
	}
}

func TestValidateInfoAccepts(t *testing.T) {
	t.Parallel()
	d := New()
	defer d.Close()
	cases := []struct {
		info map[string]any
		want bmcConfig
	}{
		{map[string]any{keyAddress: "https://10.0.0.5"}, bmcConfig{endpoint: "https://10.0.0.5"}},
		{map[string]any{keyAddress: "10.0.0.5:8443"}, bmcConfig{endpoint: "https://10.0.0.5:8443"}},
		{map[string]any{keyAddress: "http://[::1]:8000/", keySystemID: "System.Embedded.1"},
			bmcConfig{endpoint: "http://[::1]:8000", systemPath: "/redfish/v1/Systems/System.Embedded.1"}},
		{map[string]any{keyAddress: "http://bmc", keySystemID: "/redfish/v1/Systems/1/"},
			bmcConfig{endpoint: "http://bmc", systemPath: "/redfish/v1/Systems/1"}},
		{map[string]any{keyAddress: "http://bmc", keyUsername: "root", keyPassword: " spaced ", keyAuthType: "session"},
			bmcConfig{endpoint: "http://bmc", username: "root", password: " spaced ", session: true}},
		{map[string]any{keyAddress: "https://bmc", keyVerifyCA: false}, bmcConfig{endpoint: "https://bmc", skipVerify: true}},
		{map[string]any{keyAddress: "https://bmc", keyVerifyCA: "False"}, bmcConfig{endpoint: "https://bmc", skipVerify: true}},
		{map[string]any{keyAddress: "https://bmc", keyVerifyCA: "yes"}, bmcConfig{endpoint: "https://bmc"}},
		{map[string]any{keyAddress: "https://bmc", keyVerifyCA: "/etc/ferric/bmc-ca.pem"}, bmcConfig{endpoint: "https://bmc", caFile: "/etc/ferric/bmc-ca.pem"}},
		{map[string]any{keyAddress: "https://bmc", keyBootMode: "UEFI"}, bmcConfig{endpoint: "https://bmc", bootMode: schemas.UEFIBootSourceOverrideMode}},
		{map[string]any{keyAddress: "https://bmc", keyBootMode: "bios", "deploy_kernel": "x"}, bmcConfig{endpoint: "https://bmc", bootMode: schemas.LegacyBootSourceOverrideMode}},
	}
	for _, c := range cases {
		if err := d.ValidateInfo(c.info); err != nil {
			t.Errorf("ValidateInfo(%v): %v", c.info, err)
			continue
		}
		got, _ := parseInfo(c.info)
		if *got != c.want {
			t.Errorf("parseInfo(%v) = %+v, want %+v", c.info, *got, c.want)
		}
	}
}

func TestValidateInfoRejects(t *testing.T) {
	t.Parallel()
	d := New()
	defer d.Close()
	cases := []struct {
		info   map[string]any
		key    string
		reason string
	}{
		{map[string]any{}, keyAddress, "required"},
		{map[string]any{keyAddress: 42}, keyAddress, "must be a string"},
		{map[string]any{keyAddress: "ftp://bmc"}, keyAddress, "http or https"},
		{map[string]any{keyAddress: "https://root:Sup3rS3cret@bmc"}, keyAddress, "must not contain credentials"},
		{map[string]any{keyAddress: "https://bmc/redfish/v1"}, keyAddress, "must not contain a path"},
		{map[string]any{keyAddress: "https://bmc?x=1"}, keyAddress, "query"},
		{map[string]any{keyAddress: "https://"}, keyAddress, "no host"},
		{map[string]any{keyAddress: "http://bmc:port"}, keyAddress, "not a valid URL"},
		{map[string]any{keyAddress: "https://bmc", keySystemID: "a/b"}, keySystemID, "system id"},
		{map[string]any{keyAddress: "https://bmc", keySystemID: "/Systems/1"}, keySystemID, "under /redfish/v1/"},
		{map[string]any{keyAddress: "https://bmc", keySystemID: "/redfish/v1/../../etc"}, keySystemID, "under /redfish/v1/"},
		{map[string]any{keyAddress: "https://bmc", keyPassword: 1234}, keyPassword, "must be a string"},
		{map[string]any{keyAddress: "https://bmc", keyVerifyCA: "certs/ca.pem"}, keyVerifyCA, "absolute path"},
		{map[string]any{keyAddress: "https://bmc", keyVerifyCA: 1}, keyVerifyCA, "boolean"},
		{map[string]any{keyAddress: "https://bmc", keyAuthType: "digest"}, keyAuthType, "basic or session"},
		{map[string]any{keyAddress: "https://bmc", keyAuthType: "session"}, keyUsername, "required with"},
		{map[string]any{keyAddress: "https://bmc", keyBootMode: "legacy"}, keyBootMode, "uefi or bios"},
		{map[string]any{keyAddress: "https://bmc", "redfish_adress": "x"}, "redfish_adress", "unknown key"},
	}
	for _, c := range cases {
		err := d.ValidateInfo(c.info)
		var ie *drivers.InfoError
		if !errors.As(err, &ie) || ie.Key != c.key || !strings.Contains(ie.Reason, c.reason) {
			t.Errorf("ValidateInfo(%v) = %v; want InfoError on %s mentioning %q", c.info, err, c.key, c.reason)
			continue
		}
		if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "Sup3rS3cret") {
			t.Errorf("ValidateInfo error shows the password: %v", err)
		}
	}
}

func TestOperationWithBadInfoNamesNodeAndKey(t *testing.T) {
	t.Parallel()
	b := newBMC(t, redfishsim.Options{})
	d, _ := newDriver(t, Options{})
	n := b.node(map[string]any{keyAuthType: "kerberos"})
	_, err := d.PowerState(ctxWithTimeout(t, 5*time.Second), n)
	assertCleanError(t, err, "read power state")
	var ie *drivers.InfoError
	if !errors.As(err, &ie) || ie.Key != keyAuthType {
		t.Fatalf("want InfoError on %s, got %v", keyAuthType, err)
	}
	if b.sim.Requests() != 0 {
		t.Fatalf("bad driver_info reached the BMC: %d requests", b.sim.Requests())
	}
}
