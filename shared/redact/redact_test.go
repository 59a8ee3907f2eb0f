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
