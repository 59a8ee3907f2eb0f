package redact_test

import (
	"testing"

	"github.com/ferric-metal/ferric/shared/redact"
)

func TestSecrets(t *testing.T) {
	in := map[string]any{
		"ipmi_password":  "hunter2",
		"Redfish_Secret": "s",
		"ipmi_address":   "10.0.0.1",
		"deep":           map[string]any{"list": []any{map[string]any{"auth_token": "t", "ok": 1.0}}},
		"image_url":      "http://u:p@h/",
		"empty_password": nil,
	}
	out := redact.Secrets(in, "image_url")
	for _, k := range []string{"ipmi_password", "Redfish_Secret", "image_url"} {
		if out[k] != redact.Mask {
			t.Errorf("%s not masked: %v", k, out[k])
		}
	}
	if out["ipmi_address"] != "10.0.0.1" || out["empty_password"] != nil {
		t.Errorf("non-secrets changed: %v", out)
	}
	item := out["deep"].(map[string]any)["list"].([]any)[0].(map[string]any)
	if item["auth_token"] != redact.Mask || item["ok"] != 1.0 {
		t.Errorf("nested: %v", item)
	}
	if in["ipmi_password"] != "hunter2" || in["deep"].(map[string]any)["list"].([]any)[0].(map[string]any)["auth_token"] != "t" {
		t.Error("the input was modified")
	}
}

func TestSecretsInsideStrings(t *testing.T) {
	for in, want := range map[string]string{
		"ipmitool -I lanplus -U admin password=hunter2 power on": "ipmitool -I lanplus -U admin password=****** power on",
		`{"auth_token": "abc123", "user": "x"}`:                  `{"auth_token": "******", "user": "x"}`,
		"http://h/x?os_auth_token=abc&page=2":                    "http://h/x?os_auth_token=******&page=2",
		"<Password>pw</Password>":                                "<Password>******</Password>",
		"SECRET: s3 next":                                        "SECRET: ****** next",
		"user=admin host=10.0.0.1":                               "user=admin host=10.0.0.1",
		"no secrets here":                                        "no secrets here",
		"https://secret-bmc.example.com:8443/redfish/v1":         "https://secret-bmc.example.com:8443/redfish/v1",
		"token_ttl: 3600, passwordless: true":                    "token_ttl: 3600, passwordless: true",
		"/etc/secrets:/mnt:ro":                                   "/etc/secrets:/mnt:ro",
		`password="hunter 2" next`:                               `password="******" next`,
		"http://admin:pw0rd@images.example/os.qcow2":             "http://admin:******@images.example/os.qcow2",
		"<password>p&amp;ss</password>":                          "<password>******</password>",
		"fd00::1 and [fd00::2]:623":                              "fd00::1 and [fd00::2]:623",
	} {
		if got := redact.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	out := redact.Secrets(map[string]any{"cmd": "x password=hunter2", "deep": []any{"token=t1"}})
	if out["cmd"] != "x password=******" || out["deep"].([]any)[0] != "token=******" {
		t.Errorf("nested strings not masked: %v", out)
	}
}
