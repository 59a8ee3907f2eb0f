package ipmi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ferric-metal/ferric/drivers"
)

func TestNameAndDescription(t *testing.T) {
	t.Parallel()
	d := New()
	if d.Name() != "ipmi" {
		t.Errorf("Name = %q, want ipmi", d.Name())
	}
	if d.Description() == "" {
		t.Error("empty Description")
	}
}

func TestPropertiesDocumentEveryKey(t *testing.T) {
	t.Parallel()
	props := map[string]drivers.Property{}
	for _, p := range New().Properties() {
		if p.Description == "" {
			t.Errorf("property %s has no description", p.Name)
		}
		props[p.Name] = p
	}
	for _, key := range []string{keyAddress, keyPort, keyUsername, keyPassword, keyCipherSuite, keyPrivLevel, keyTimeout, keyRetries, keyBootMode} {
		if _, ok := props[key]; !ok {
			t.Errorf("driver_info key %s is read but not documented", key)
		}
	}
	if !props[keyAddress].Required {
		t.Error("ipmi_address must be documented as required")
	}
	for name, p := range props {
		if p.Required && name != keyAddress {
			t.Errorf("%s documented as required but has a default", name)
		}
	}
}

func TestParseInfoDefaults(t *testing.T) {
	t.Parallel()
	c, err := parseInfo(map[string]any{"ipmi_address": "10.0.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	want := config{address: "10.0.0.5", port: 623, cipherSuite: 3, privLevel: types.PrivilegeLevelAdministrator,
		timeout: defaultTimeout, retries: defaultRetries, efiBoot: true}
	if *c != want {
		t.Errorf("got %+v, want %+v", *c, want)
	}
	if c.bmc() != "10.0.0.5:623" {
		t.Errorf("bmc() = %q", c.bmc())
	}
}

func TestParseInfoAcceptsJSONShapes(t *testing.T) {
	t.Parallel()
	// What encoding/json produces (float64, or json.Number with UseNumber)
	// and what operators type (numeric strings) must all work.
	for _, tc := range []struct {
		name string
		info map[string]any
		want config
	}{
		{"json numbers", map[string]any{"ipmi_port": float64(6230), "ipmi_cipher_suite": float64(17), "ipmi_retries": float64(0), "ipmi_timeout": float64(2.5)},
			config{port: 6230, cipherSuite: 17, retries: 0, timeout: 2500 * time.Millisecond}},
		{"json.Number", map[string]any{"ipmi_port": json.Number("6231"), "ipmi_cipher_suite": json.Number("8"), "ipmi_retries": json.Number("3"), "ipmi_timeout": json.Number("4")},
			config{port: 6231, cipherSuite: 8, retries: 3, timeout: 4 * time.Second}},
		{"numeric strings", map[string]any{"ipmi_port": "6232", "ipmi_cipher_suite": " 3 ", "ipmi_retries": "1", "ipmi_timeout": "7"},
			config{port: 6232, cipherSuite: 3, retries: 1, timeout: 7 * time.Second}},
		{"go ints and duration string", map[string]any{"ipmi_port": 6233, "ipmi_cipher_suite": 12, "ipmi_retries": 10, "ipmi_timeout": "1500ms"},
			config{port: 6233, cipherSuite: 12, retries: 10, timeout: 1500 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.info["ipmi_address"] = "bmc-1.example.org"
			c, err := parseInfo(tc.info)
			if err != nil {
				t.Fatal(err)
			}
			if c.port != tc.want.port || c.cipherSuite != tc.want.cipherSuite || c.retries != tc.want.retries || c.timeout != tc.want.timeout {
				t.Errorf("got port %d suite %d retries %d timeout %s, want %+v", c.port, c.cipherSuite, c.retries, c.timeout, tc.want)
			}
		})
	}
}

func TestParseInfoValues(t *testing.T) {
	t.Parallel()
	c, err := parseInfo(map[string]any{
		"ipmi_address": "[fd00::1]", "ipmi_username": "root", "ipmi_password": "calvin",
		"ipmi_priv_level": "operator", "ipmi_boot_mode": "BIOS",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.address != "fd00::1" || c.username != "root" || c.password != "calvin" ||
		c.privLevel != types.PrivilegeLevelOperator || c.efiBoot {
		t.Errorf("got %+v", *c)
	}
	if c.bmc() != "[fd00::1]:623" {
		t.Errorf("bmc() = %q", c.bmc())
	}
	for level, want := range map[string]types.PrivilegeLevel{"ADMINISTRATOR": types.PrivilegeLevelAdministrator, "USER": types.PrivilegeLevelUser} {
		c, err := parseInfo(map[string]any{"ipmi_address": "h", "ipmi_priv_level": level})
		if err != nil || c.privLevel != want {
			t.Errorf("priv %s: got %v, %v", level, c, err)
		}
	}
}

func TestValidateInfoRejects(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 21)
	for _, tc := range []struct {
		name string
		key  string
		info map[string]any
	}{
		{"missing address", keyAddress, map[string]any{}},
		{"empty address", keyAddress, map[string]any{"ipmi_address": "  "}},
		{"nil address", keyAddress, map[string]any{"ipmi_address": nil}},
		{"address not a string", keyAddress, map[string]any{"ipmi_address": 10}},
		{"address with port", keyAddress, map[string]any{"ipmi_address": "bmc.example.org:623"}},
		{"address with scheme", keyAddress, map[string]any{"ipmi_address": "ipmi://bmc"}},
		{"address with space", keyAddress, map[string]any{"ipmi_address": "bmc one"}},
		{"address with zone", keyAddress, map[string]any{"ipmi_address": "fe80::1%eth0"}},
		{"port zero", keyPort, map[string]any{"ipmi_port": 0}},
		{"port too big", keyPort, map[string]any{"ipmi_port": float64(65536)}},
		{"port fraction", keyPort, map[string]any{"ipmi_port": 623.5}},
		{"port word", keyPort, map[string]any{"ipmi_port": "ipmi"}},
		{"port bool", keyPort, map[string]any{"ipmi_port": true}},
		{"username not a string", keyUsername, map[string]any{"ipmi_username": 7}},
		{"username too long", keyUsername, map[string]any{"ipmi_username": long[:17]}},
		{"password not a string", keyPassword, map[string]any{"ipmi_password": []string{"x"}}},
		{"password too long", keyPassword, map[string]any{"ipmi_password": long}},
		{"cipher suite zero", keyCipherSuite, map[string]any{"ipmi_cipher_suite": 0}},
		{"cipher suite 20", keyCipherSuite, map[string]any{"ipmi_cipher_suite": "20"}},
		{"cipher suite word", keyCipherSuite, map[string]any{"ipmi_cipher_suite": "aes"}},
		{"priv level unknown", keyPrivLevel, map[string]any{"ipmi_priv_level": "ROOT"}},
		{"priv level callback", keyPrivLevel, map[string]any{"ipmi_priv_level": "CALLBACK"}},
		{"priv level number", keyPrivLevel, map[string]any{"ipmi_priv_level": 4}},
		{"timeout negative", keyTimeout, map[string]any{"ipmi_timeout": "-1s"}},
		{"timeout zero", keyTimeout, map[string]any{"ipmi_timeout": 0}},
		{"timeout too long", keyTimeout, map[string]any{"ipmi_timeout": "2m"}},
		{"timeout word", keyTimeout, map[string]any{"ipmi_timeout": "soon"}},
		{"retries negative", keyRetries, map[string]any{"ipmi_retries": -1}},
		{"retries too many", keyRetries, map[string]any{"ipmi_retries": 11}},
		{"retries fraction", keyRetries, map[string]any{"ipmi_retries": 1.5}},
		{"boot mode unknown", keyBootMode, map[string]any{"ipmi_boot_mode": "efi"}},
		{"boot mode number", keyBootMode, map[string]any{"ipmi_boot_mode": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.info[keyAddress]; !ok && tc.key != keyAddress {
				tc.info[keyAddress] = "192.0.2.10"
			}
			err := New().ValidateInfo(tc.info)
			var ie *drivers.InfoError
			if !errors.As(err, &ie) {
				t.Fatalf("want *drivers.InfoError, got %v", err)
			}
			if ie.Key != tc.key {
				t.Errorf("error names key %q, want %q (%v)", ie.Key, tc.key, err)
			}
			if strings.Contains(err.Error(), long) {
				t.Errorf("error quotes the password: %v", err)
			}
		})
	}
}

func TestValidateInfoAcceptsHostNames(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"192.0.2.1", "::1", "[2001:db8::5]", "bmc", "bmc-01.rack3.example.org", "BMC_7.lab", "localhost."} {
		if err := New().ValidateInfo(map[string]any{"ipmi_address": addr}); err != nil {
			t.Errorf("%q: %v", addr, err)
		}
	}
}

func TestInvalidInfoFailsEveryOperationWithoutNetwork(t *testing.T) {
	t.Parallel()
	d := New()
	n := drivers.Node{UUID: "u-1", Name: "bad-info", DriverInfo: map[string]any{"ipmi_address": "192.0.2.1", "ipmi_port": "nope"}}
	ctx := timeout(t, 5*time.Second)
	check := func(op string, err error) {
		t.Helper()
		var ie *drivers.InfoError
		if !errors.As(err, &ie) || ie.Key != keyPort {
			t.Errorf("%s: want InfoError for ipmi_port, got %v", op, err)
		}
		checkError(t, err, n, op)
	}
	_, err := within(t, time.Second, func() error { _, err := d.PowerState(ctx, n); return err })
	check("power status", err)
	check("power on", d.SetPowerState(ctx, n, drivers.ActionPowerOn, 0))
	check("soft power off", d.SetPowerState(ctx, n, drivers.ActionSoftPowerOff, 0))
	_, _, err = d.BootDevice(ctx, n)
	check("get boot device", err)
	check("set boot device pxe", d.SetBootDevice(ctx, n, drivers.BootPXE, false))
}
