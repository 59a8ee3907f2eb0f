package ipmi

import (
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ferric-metal/ferric/drivers"
)

// driver_info keys.
const (
	keyAddress     = "ipmi_address"
	keyPort        = "ipmi_port"
	keyUsername    = "ipmi_username"
	keyPassword    = "ipmi_password"
	keyCipherSuite = "ipmi_cipher_suite"
	keyPrivLevel   = "ipmi_priv_level"
	keyTimeout     = "ipmi_timeout"
	keyRetries     = "ipmi_retries"
	keyBootMode    = "ipmi_boot_mode"
)

// Defaults for optional keys.
const (
	defaultPort        = 623
	defaultCipherSuite = 3
	defaultPrivLevel   = "ADMINISTRATOR"
	// defaultTimeout is how long one request waits for the BMC's reply.
	// go-ipmi's own default (1 s) is too short for busy real BMCs.
	defaultTimeout  = 5 * time.Second
	defaultRetries  = 2
	defaultBootMode = "uefi"

	maxTimeout = 60 * time.Second
	maxRetries = 10
	// IPMI 2.0 limits: 16-byte user names, 20-byte passwords.
	maxUsernameLen = 16
	maxPasswordLen = 20
)

var privLevels = map[string]types.PrivilegeLevel{
	"ADMINISTRATOR": types.PrivilegeLevelAdministrator,
	"OPERATOR":      types.PrivilegeLevelOperator,
	"USER":          types.PrivilegeLevelUser,
}

// config is a node's parsed driver_info.
type config struct {
	address     string // host name or IP literal, without port
	port        int
	username    string
	password    string
	cipherSuite types.CipherSuiteID
	privLevel   types.PrivilegeLevel
	timeout     time.Duration // per request, before a retry
	retries     int           // extra attempts after a request timed out
	efiBoot     bool          // boot flags ask for an EFI boot
}

// bmc names the BMC in errors: address and port, never credentials.
func (c *config) bmc() string {
	return net.JoinHostPort(c.address, strconv.Itoa(c.port))
}

// parseInfo validates driver_info and fills in defaults. Errors are
// *drivers.InfoError naming the key; they never quote a password.
func parseInfo(info map[string]any) (*config, error) {
	c := &config{
		port:        defaultPort,
		cipherSuite: defaultCipherSuite,
		privLevel:   types.PrivilegeLevelAdministrator,
		timeout:     defaultTimeout,
		retries:     defaultRetries,
		efiBoot:     true,
	}

	addr, err := stringKey(info, keyAddress, true)
	if err != nil {
		return nil, err
	}
	if c.address, err = checkAddress(addr); err != nil {
		return nil, &drivers.InfoError{Key: keyAddress, Reason: err.Error()}
	}

	if v, ok := info[keyPort]; ok {
		port, err := integer(v)
		if err != nil || port < 1 || port > 65535 {
			return nil, &drivers.InfoError{Key: keyPort, Reason: "must be an integer port number from 1 to 65535"}
		}
		c.port = int(port)
	}

	if c.username, err = stringKey(info, keyUsername, false); err != nil {
		return nil, err
	}
	if len(c.username) > maxUsernameLen {
		return nil, &drivers.InfoError{Key: keyUsername, Reason: fmt.Sprintf("must be at most %d bytes (IPMI 2.0 limit)", maxUsernameLen)}
	}
	if c.password, err = stringKey(info, keyPassword, false); err != nil {
		return nil, err
	}
	if len(c.password) > maxPasswordLen {
		// The reason must not quote the value: it is a secret.
		return nil, &drivers.InfoError{Key: keyPassword, Reason: fmt.Sprintf("must be at most %d bytes (IPMI 2.0 limit)", maxPasswordLen)}
	}

	if v, ok := info[keyCipherSuite]; ok {
		cs, err := integer(v)
		// Suite 0 authenticates nothing: any password would be accepted.
		if err != nil || cs < 1 || cs > 19 {
			return nil, &drivers.InfoError{Key: keyCipherSuite, Reason: "must be an integer cipher suite ID from 1 to 19 (0, no authentication, is refused)"}
		}
		c.cipherSuite = types.CipherSuiteID(cs)
	}

	if v, ok := info[keyPrivLevel]; ok {
		s, isString := v.(string)
		level, known := privLevels[strings.ToUpper(strings.TrimSpace(s))]
		if !isString || !known {
			return nil, &drivers.InfoError{Key: keyPrivLevel, Reason: "must be ADMINISTRATOR, OPERATOR or USER"}
		}
		c.privLevel = level
	}

	if v, ok := info[keyTimeout]; ok {
		d, err := duration(v)
		if err != nil || d <= 0 || d > maxTimeout {
			return nil, &drivers.InfoError{Key: keyTimeout, Reason: fmt.Sprintf("must be a duration such as \"5s\" or a number of seconds, above 0 and at most %s", maxTimeout)}
		}
		c.timeout = d
	}

	if v, ok := info[keyRetries]; ok {
		r, err := integer(v)
		if err != nil || r < 0 || r > maxRetries {
			return nil, &drivers.InfoError{Key: keyRetries, Reason: fmt.Sprintf("must be an integer from 0 to %d", maxRetries)}
		}
		c.retries = int(r)
	}

	if v, ok := info[keyBootMode]; ok {
		s, _ := v.(string)
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "uefi":
			c.efiBoot = true
		case "bios":
			c.efiBoot = false
		default:
			return nil, &drivers.InfoError{Key: keyBootMode, Reason: "must be \"uefi\" or \"bios\""}
		}
	}
	return c, nil
}

// stringKey reads an optional or required string key.
func stringKey(info map[string]any, key string, required bool) (string, error) {
	v, ok := info[key]
	if !ok || v == nil {
		if required {
			return "", &drivers.InfoError{Key: key, Reason: "is required"}
		}
		return "", nil
	}
	s, isString := v.(string)
	if !isString {
		return "", &drivers.InfoError{Key: key, Reason: "must be a string"}
	}
	if required && strings.TrimSpace(s) == "" {
		return "", &drivers.InfoError{Key: key, Reason: "is required"}
	}
	return s, nil
}

// checkAddress accepts an IP literal (IPv6 optionally in brackets) or a DNS
// host name, and refuses "host:port" so the port is not silently ignored.
func checkAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("IPv6 zones are not supported")
		}
		return ip.String(), nil
	}
	if strings.Contains(s, ":") {
		return "", fmt.Errorf("must be a host name or IP address without a port (use %s for the port)", keyPort)
	}
	if len(s) > 253 {
		return "", fmt.Errorf("host name is too long")
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("must be a host name or IP address")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "", fmt.Errorf("must be a host name or IP address")
			}
		}
	}
	return s, nil
}

// integer accepts a JSON number (float64 or json.Number), a Go integer, or
// a numeric string, as API clients send either.
func integer(v any) (int64, error) {
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int32:
		return int64(n), nil
	case int64:
		return n, nil
	case float64:
		if n != math.Trunc(n) || math.IsInf(n, 0) || math.Abs(n) > 1<<53 {
			return 0, fmt.Errorf("not an integer")
		}
		return int64(n), nil
	case json.Number:
		return strconv.ParseInt(string(n), 10, 64)
	case string:
		return strconv.ParseInt(strings.TrimSpace(n), 10, 64)
	}
	return 0, fmt.Errorf("not a number")
}

// duration accepts a Go duration string ("5s", "1500ms") or a number of
// seconds (JSON number or numeric string).
func duration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case string:
		if d, err := time.ParseDuration(strings.TrimSpace(x)); err == nil {
			return d, nil
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, err
		}
		return seconds(f)
	case float64:
		return seconds(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, err
		}
		return seconds(f)
	case int, int32, int64:
		n, _ := integer(x)
		return seconds(float64(n))
	}
	return 0, fmt.Errorf("not a duration")
}

func seconds(f float64) (time.Duration, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f > maxTimeout.Seconds() {
		return 0, fmt.Errorf("out of range")
	}
	return time.Duration(f * float64(time.Second)), nil
}
