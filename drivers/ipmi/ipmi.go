package ipmi

import (
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/drivers"
)

// Driver is the IPMI 2.0 (lanplus) driver. It keeps no per-node state; it
// is safe for concurrent use. Its zero value is not usable; call New.
type Driver struct {
	limiter bmcLimiter
	// pollInterval is how often soft power off checks whether the node is off.
	pollInterval time.Duration
	// defaultSoftTimeout bounds soft actions when the caller passes zero.
	defaultSoftTimeout time.Duration
}

// DefaultSoftTimeout is how long soft power off and soft reboot wait for the
// node to turn off when the caller gives no timeout (Ironic's default).
const DefaultSoftTimeout = 10 * time.Minute

// New returns an IPMI driver.
func New() *Driver {
	return &Driver{pollInterval: 2 * time.Second, defaultSoftTimeout: DefaultSoftTimeout}
}

var (
	_ drivers.Driver           = (*Driver)(nil)
	_ drivers.PowerReader      = (*Driver)(nil)
	_ drivers.PowerSetter      = (*Driver)(nil)
	_ drivers.BootDeviceReader = (*Driver)(nil)
	_ drivers.BootDeviceSetter = (*Driver)(nil)
)

// Name implements drivers.Driver.
func (d *Driver) Name() string { return "ipmi" }

// Description implements drivers.Driver.
func (d *Driver) Description() string {
	return "IPMI 2.0 over LAN (RMCP+, lanplus): power and boot device control"
}

// Properties implements drivers.Driver.
func (d *Driver) Properties() []drivers.Property {
	return []drivers.Property{
		{Name: keyAddress, Required: true,
			Description: "BMC host name or IP address, without a port."},
		{Name: keyPort,
			Description: fmt.Sprintf("BMC UDP port, 1-65535. Optional, default %d.", defaultPort)},
		{Name: keyUsername,
			Description: fmt.Sprintf("BMC user name, at most %d bytes. Optional, default empty (anonymous).", maxUsernameLen)},
		{Name: keyPassword,
			Description: fmt.Sprintf("BMC password, at most %d bytes. Optional, default empty. Never shown in errors.", maxPasswordLen)},
		{Name: keyCipherSuite,
			Description: fmt.Sprintf("RMCP+ cipher suite ID, 1-19 (e.g. 3: SHA1/AES, 17: SHA256/AES). Optional, default %d.", defaultCipherSuite)},
		{Name: keyPrivLevel,
			Description: "Session privilege level: ADMINISTRATOR, OPERATOR or USER (read-only: power and boot changes fail). Optional, default ADMINISTRATOR."},
		{Name: keyTimeout,
			Description: fmt.Sprintf("How long one request waits for the BMC's reply before retrying: a duration (\"5s\") or seconds, at most %s. Optional, default %s.", maxTimeout, defaultTimeout)},
		{Name: keyRetries,
			Description: fmt.Sprintf("Retries of a request whose reply timed out, 0-%d. Optional, default %d.", maxRetries, defaultRetries)},
		{Name: keyBootMode,
			Description: fmt.Sprintf("Boot mode requested with the boot device: \"uefi\" or \"bios\" (legacy). Optional, default %q.", defaultBootMode)},
	}
}

// ValidateInfo implements drivers.Driver. It does not contact the BMC.
func (d *Driver) ValidateInfo(info map[string]any) error {
	_, err := parseInfo(info)
	return err
}
