// Package redfish is Ferric's driver for BMCs that speak DMTF Redfish. It
// reads and sets power state and the next boot device of a ComputerSystem,
// and offers two vendor passthru methods: bios_attributes (read the BIOS
// attributes) and eject_virtual_media (eject inserted virtual media).
//
// driver_info keys:
//
//	redfish_address    BMC URL, http or https (bare host: https). Required.
//	redfish_system_id  ComputerSystem id or path; optional when the BMC has one system.
//	redfish_username   BMC user.
//	redfish_password   BMC password.
//	redfish_verify_ca  true (default), false, or the path of a CA bundle.
//	redfish_auth_type  basic (default) or session.
//	redfish_boot_mode  uefi or bios: sent with boot device changes. Optional.
//
// The driver talks Redfish through gofish's schema types over an HTTP client
// of its own: every request runs under the caller's context, and one
// http.Transport per BMC endpoint, credentials and TLS settings is cached and
// reused (bounded LRU with idle expiry; Close releases them). It starts no
// goroutines of its own. With session auth, each operation logs in and logs
// out again, keeping part of the deadline for the logout.
//
// Errors name the node and the operation and never contain the password,
// the Authorization header or a session token.
package redfish

import (
	"log/slog"
	"time"

	"github.com/ferric-metal/ferric/drivers"
)

// Options tune a Driver; zero fields take the defaults.
type Options struct {
	// MaxTransports bounds the cached transports, one per BMC endpoint,
	// credentials and TLS settings (default 1024). The least recently used
	// one is dropped first.
	MaxTransports int
	// TransportIdleTTL drops a cached transport unused for this long
	// (default 5 minutes).
	TransportIdleTTL time.Duration
	// PowerPollInterval is how often the power state is read while waiting
	// for a node to power off (default 1 s).
	PowerPollInterval time.Duration
	// SoftPowerOffTimeout bounds soft power off when the caller passes no
	// timeout (default 10 minutes, as Ironic). The context deadline still
	// wins when it is earlier.
	SoftPowerOffTimeout time.Duration
	// Logger receives warnings the caller cannot act on, such as a failed
	// session logout (default slog.Default()).
	Logger *slog.Logger
}

// Driver is the redfish driver. It is safe for concurrent use by many nodes.
// Create it with New or NewWithOptions and Close it when done.
type Driver struct {
	transports   *transportCache
	pollInterval time.Duration
	softTimeout  time.Duration
	log          *slog.Logger
	// maxResponseBytes caps a BMC answer; a field so tests can lower it.
	maxResponseBytes int64
}

var (
	_ drivers.Driver           = (*Driver)(nil)
	_ drivers.PowerReader      = (*Driver)(nil)
	_ drivers.PowerSetter      = (*Driver)(nil)
	_ drivers.BootDeviceReader = (*Driver)(nil)
	_ drivers.BootDeviceSetter = (*Driver)(nil)
	_ drivers.NodeVendor       = (*Driver)(nil)
)

// New returns a redfish driver with default options.
func New() *Driver { return NewWithOptions(Options{}) }

// NewWithOptions returns a redfish driver tuned by opts.
func NewWithOptions(opts Options) *Driver {
	if opts.MaxTransports <= 0 {
		opts.MaxTransports = 1024
	}
	if opts.TransportIdleTTL <= 0 {
		opts.TransportIdleTTL = 5 * time.Minute
	}
	if opts.PowerPollInterval <= 0 {
		opts.PowerPollInterval = time.Second
	}
	if opts.SoftPowerOffTimeout <= 0 {
		opts.SoftPowerOffTimeout = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Driver{
		transports:   newTransportCache(opts.MaxTransports, opts.TransportIdleTTL),
		pollInterval: opts.PowerPollInterval,
		softTimeout:  opts.SoftPowerOffTimeout,
		log:          opts.Logger,

		maxResponseBytes: defaultMaxResponseBytes,
	}
}

// Close drops every cached transport and closes its idle connections.
// Requests in flight finish normally; the driver stays usable and builds new
// transports on demand.
func (d *Driver) Close() error {
	d.transports.closeAll()
	return nil
}

// Name implements drivers.Driver.
func (d *Driver) Name() string { return "redfish" }

// Description implements drivers.Driver.
func (d *Driver) Description() string {
	return "DMTF Redfish BMCs: power, boot device, BIOS attributes and virtual media eject"
}

// Properties implements drivers.Driver.
func (d *Driver) Properties() []drivers.Property {
	return []drivers.Property{
		{Name: keyAddress, Required: true, Description: "URL of the BMC, http:// or https://, without a path, e.g. https://10.0.0.5 or http://127.0.0.1:8000. A bare host means https."},
		{Name: keySystemID, Description: "The ComputerSystem: its id (\"1\") or its path (/redfish/v1/Systems/1). Optional when the BMC has exactly one system; required otherwise. Setting it saves two requests per operation."},
		{Name: keyUsername, Description: "User name for the BMC. Optional."},
		{Name: keyPassword, Description: "Password for the BMC. Optional. Never shown in errors."},
		{Name: keyVerifyCA, Description: "TLS verification of an https BMC: true (default), false, or the absolute path of a PEM CA bundle."},
		{Name: keyAuthType, Description: "basic (default): HTTP Basic on every request; session: log in to the SessionService and out after each operation. BMCs without a SessionService need basic."},
		{Name: keyBootMode, Description: "uefi or bios: sent as BootSourceOverrideMode with every boot device change. Optional; when unset the BMC's mode is left alone."},
	}
}

// ValidateInfo implements drivers.Driver. It checks keys, types and formats
// without touching the network or the file system.
func (d *Driver) ValidateInfo(info map[string]any) error {
	_, err := parseInfo(info)
	return err
}
