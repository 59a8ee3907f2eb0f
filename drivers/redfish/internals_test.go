package redfish

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/drivers"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	base := errors.Join(context.DeadlineExceeded, errors.New("bmc said hunter22 and dG9rZW4="))
	err := redact(base, []string{"hunter22", "dG9rZW4=", ""})
	if err.Error() != "context deadline exceeded\nbmc said [REDACTED] and [REDACTED]" {
		t.Fatalf("redacted message %q", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("redaction broke errors.Is")
	}
	if clean := errors.New("nothing secret"); redact(clean, []string{"hunter22"}) != clean {
		t.Fatal("an error without secrets was rewrapped")
	}
	if redact(nil, []string{"x"}) != nil {
		t.Fatal("redact(nil) is not nil")
	}
}

func TestResolveKeepsRequestsOnTheEndpoint(t *testing.T) {
	t.Parallel()
	c := &bmcClient{endpoint: "https://10.0.0.5:443"}
	for target, want := range map[string]string{
		"/redfish/v1/Systems/1":                         "/redfish/v1/Systems/1",
		"https://10.0.0.5:443/redfish/v1/Systems/1?x=1": "/redfish/v1/Systems/1?x=1",
		"":                                "",
		"//evil.example/redfish/v1":       "",
		"https://evil.example/redfish/v1": "",
		"http://10.0.0.5:443/redfish/v1":  "",
		"redfish/v1/Systems/1":            "",
	} {
		got, err := c.resolve(target)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("resolve(%q) = %q, %v; want %q", target, got, err, want)
		}
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	if got := clip("  line one\r\n\tline\x00two  "); got != "line one line two" {
		t.Fatalf("clip = %q", got)
	}
	long := strings.Repeat("é", 400)
	got := clip(long)
	if !strings.HasSuffix(got, "...") || len(got) > 303 || !utf8.ValidString(got) {
		t.Fatalf("clip of a long string: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

func TestPowerStateMapping(t *testing.T) {
	t.Parallel()
	for in, want := range map[schemas.PowerState]drivers.PowerState{
		"On": drivers.PowerOn, "PoweringOn": drivers.PowerOn, "Off": drivers.PowerOff, "PoweringOff": drivers.PowerOff,
		"Paused": "", "": "", "Exploded": "",
	} {
		got, err := powerStateOf(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("powerStateOf(%q) = %q, %v", in, got, err)
		}
	}
}

func TestCappedBody(t *testing.T) {
	t.Parallel()
	exact := &cappedBody{rc: io.NopCloser(strings.NewReader("12345")), left: 5}
	if b, err := io.ReadAll(exact); err != nil || string(b) != "12345" {
		t.Fatalf("at the limit: %q, %v", b, err)
	}
	over := &cappedBody{rc: io.NopCloser(strings.NewReader("123456")), left: 5}
	if _, err := io.ReadAll(over); !errors.Is(err, errResponseTooLarge) {
		t.Fatalf("past the limit: %v", err)
	}
}
