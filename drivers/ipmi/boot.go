package ipmi

import (
	"context"
	"fmt"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ferric-metal/ferric/drivers"
)

// bootSelectors maps the devices this driver sets to IPMI boot device
// selectors (Set System Boot Options, parameter 5).
var bootSelectors = map[drivers.BootDevice]types.BootDeviceSelector{
	drivers.BootPXE:   types.BootDeviceSelectorForcePXE,
	drivers.BootDisk:  types.BootDeviceSelectorForceHardDrive,
	drivers.BootCDROM: types.BootDeviceSelectorForceCDROM,
	drivers.BootBIOS:  types.BootDeviceSelectorForceBIOSSetup,
}

var supportedBoot = []drivers.BootDevice{drivers.BootPXE, drivers.BootDisk, drivers.BootCDROM, drivers.BootBIOS}

// BootDevice implements drivers.BootDeviceReader with Get System Boot
// Options (boot flags). It reports the device selector and the persistent
// bit as the BMC holds them; an empty device means no override is set (the
// firmware's own boot order applies). Some BMCs, ipmi_sim among them, do not
// keep the persistent bit, and report false.
func (d *Driver) BootDevice(ctx context.Context, n drivers.Node) (drivers.BootDevice, bool, error) {
	var flags types.BootOptionParam_BootFlags
	err := d.withSession(ctx, n, "get boot device", func(ctx context.Context, c *client.Client) error {
		return c.GetSystemBootOptionsParamFor(ctx, &flags)
	})
	if err != nil {
		return "", false, err
	}
	switch flags.BootDeviceSelector {
	case types.BootDeviceSelectorNoOverride:
		return "", flags.Persist, nil
	case types.BootDeviceSelectorForceHardDriveSafe:
		return drivers.BootSafe, flags.Persist, nil
	}
	for dev, sel := range bootSelectors {
		if sel == flags.BootDeviceSelector {
			return dev, flags.Persist, nil
		}
	}
	return "", false, fmt.Errorf("ipmi get boot device on node %s: BMC reports %q, which Ferric has no name for: %w",
		n.Label(), flags.BootDeviceSelector, drivers.ErrNotSupported)
}

// SupportedBootDevices implements drivers.BootDeviceReader.
func (d *Driver) SupportedBootDevices(context.Context, drivers.Node) ([]drivers.BootDevice, error) {
	return append([]drivers.BootDevice(nil), supportedBoot...), nil
}

// SetBootDevice implements drivers.BootDeviceSetter. It first asks the BMC
// to keep the boot flags past the IPMI 60-second validity timeout (as
// Ironic does; best effort, many BMCs refuse the parameter), then sets the
// boot flags: valid, persistent or next boot only, EFI or legacy per
// ipmi_boot_mode, and the device.
func (d *Driver) SetBootDevice(ctx context.Context, n drivers.Node, dev drivers.BootDevice, persistent bool) error {
	op := fmt.Sprintf("set boot device %s", dev)
	sel, ok := bootSelectors[dev]
	if !ok {
		return fmt.Errorf("ipmi %s on node %s: %w", op, n.Label(), drivers.ErrNotSupported)
	}
	cfg, err := parseInfo(n.DriverInfo)
	if err != nil {
		return opError(n, op, nil, err)
	}
	return d.withSession(ctx, n, op, func(ctx context.Context, c *client.Client) error {
		keep := &types.BootOptionParam_BMCBootFlagValidBitClear{DontClearOnCommandReceivedTimeout: true}
		if err := c.SetSystemBootOptionsParamFor(ctx, keep); err != nil {
			if _, refused := types.IsResponseError(err); !refused {
				return fmt.Errorf("set boot flag valid bit clearing: %w", err)
			}
		}
		flags := &types.BootOptionParam_BootFlags{
			BootFlagsValid:     true,
			Persist:            persistent,
			BIOSBootType:       types.BIOSBootType(cfg.efiBoot),
			BootDeviceSelector: sel,
		}
		if err := c.SetSystemBootOptionsParamFor(ctx, flags); err != nil {
			return fmt.Errorf("set boot flags: %w", err)
		}
		return nil
	})
}
