package redact_test

import (
	"testing"

	"github.com/ferric-metal/ferric/shared/redact"
)

func TestURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://images.example/ubuntu.qcow2":                              "https://images.example/ubuntu.qcow2",
		"https://user:hunter2@images.example/a.img":                        "https://images.example/a.img",
		"https://swift.example/v1/c/o?temp_url_sig=abc&temp_url_expires=1": "https://swift.example/v1/c/o?...",
		"http://10.0.2.2:8080/img#token=xyz":                               "http://10.0.2.2:8080/img",
		"http://[::1]:6386/v1/lookup":                                      "http://[::1]:6386/v1/lookup",
		"http://a b/%zz":                                                   "(unparseable URL)",
	} {
		if got := redact.URL(raw); got != want {
			t.Errorf("URL(%q) = %q, want %q", raw, got, want)
		}
	}
}
