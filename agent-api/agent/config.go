package agent

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/shared/redact"
)

// Config is what an agent needs to run. Ramdisks get it from the kernel
// command line (ParseKernelCmdline); other uses from flags and FERRIC_AGENT_*
// variables (see the ferric-agent program).
type Config struct {
	// APIURL is the agent API's base URL (kernel parameter ferric.api).
	APIURL string
	// CAFile is a PEM bundle of the CAs that sign the agent API's and the
	// image servers' certificates, in addition to the system's (kernel
	// parameter ferric.ca, a path inside the ramdisk).
	CAFile string
	// BootMAC is the MAC address of the interface that booted (BOOTIF=,
	// pxelinux's 01-aa-bb-... form or a plain MAC).
	BootMAC string
	// Version is what the agent reports as agent_version.
	Version string
	// MinBackoff and MaxBackoff bound the retry delays of lookups and
	// failed checkins. Defaults 1 s and 60 s.
	MinBackoff, MaxBackoff time.Duration
	// RequestTimeout bounds one call to the agent API. Default 30 s.
	RequestTimeout time.Duration
	// ImageStallTimeout fails an image download that sends nothing for
	// this long. Default 60 s.
	ImageStallTimeout time.Duration
	// PowerOffPause is how long a simulated machine stays "off" after a
	// power_off or reboot command before it boots its agent again. Default
	// 10 s.
	PowerOffPause time.Duration
}

func (c Config) withDefaults() Config {
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Minute
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.ImageStallTimeout <= 0 {
		c.ImageStallTimeout = time.Minute
	}
	if c.PowerOffPause <= 0 {
		c.PowerOffPause = 10 * time.Second
	}
	if c.Version == "" {
		c.Version = "ferric-agent dev"
	}
	if len(c.Version) > 64 {
		c.Version = c.Version[:64]
	}
	return c
}

// Validate checks the configuration before the agent starts.
func (c Config) Validate() error {
	if c.APIURL == "" {
		return errors.New("no agent API URL: set ferric.api= on the kernel command line, -api or FERRIC_AGENT_API_URL")
	}
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("agent API URL %q: an http(s) URL without credentials is required", redact.URL(c.APIURL))
	}
	if c.CAFile != "" {
		if _, err := loadCAs(c.CAFile); err != nil {
			return err
		}
	}
	return nil
}

// loadCAs reads the PEM bundle into the system's pool.
func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", path)
	}
	return pool, nil
}

// KernelParams are the agent's parameters on a kernel command line.
type KernelParams struct {
	APIURL  string // ferric.api=
	CAFile  string // ferric.ca=
	BootMAC string // BOOTIF=
}

// ParseKernelCmdline reads the agent's parameters from a kernel command line
// (/proc/cmdline). Unknown parameters are the kernel's and ignored; the last
// of a repeated one wins, as the kernel does. Values may be double-quoted.
func ParseKernelCmdline(cmdline string) KernelParams {
	var p KernelParams
	for _, field := range splitCmdline(cmdline) {
		key, value, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		switch key {
		case "ferric.api":
			p.APIURL = value
		case "ferric.ca":
			p.CAFile = value
		case "BOOTIF":
			p.BootMAC = value
		}
	}
	return p
}

// splitCmdline splits on spaces outside double quotes, as the kernel does,
// and drops the quotes.
func splitCmdline(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case (r == ' ' || r == '\t' || r == '\n') && !quoted:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}
