package redfish

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/drivers"
)

// bootTargets maps Ferric boot devices to Redfish override targets, in the
// order SupportedBootDevices lists them.
var bootTargets = []struct {
	device drivers.BootDevice
	target schemas.BootSource
}{
	{drivers.BootPXE, schemas.PxeBootSource},
	{drivers.BootDisk, schemas.HddBootSource},
	{drivers.BootCDROM, schemas.CdBootSource},
	{drivers.BootBIOS, schemas.BiosSetupBootSource},
	{drivers.BootUEFIHTTP, schemas.UefiHTTPBootSource},
}

func targetFor(dev drivers.BootDevice) (schemas.BootSource, bool) {
	for _, bt := range bootTargets {
		if bt.device == dev {
			return bt.target, true
		}
	}
	return "", false
}

func deviceFor(target schemas.BootSource) (drivers.BootDevice, bool) {
	for _, bt := range bootTargets {
		if bt.target == target {
			return bt.device, true
		}
	}
	return "", false
}

// BootDevice implements drivers.BootDeviceReader. It returns the boot
// override the BMC holds; "" (not persistent) means no override is set and
// the node follows its own boot order. An override Ferric has no name for
// (e.g. Usb) is drivers.ErrNotSupported.
func (d *Driver) BootDevice(ctx context.Context, n drivers.Node) (drivers.BootDevice, bool, error) {
	var dev drivers.BootDevice
	var persistent bool
	err := d.run(ctx, n, "read boot device", func(o *operation) error {
		sys, err := o.system()
		if err != nil {
			return err
		}
		boot := sys.Boot
		if boot.BootSourceOverrideEnabled == schemas.DisabledBootSourceOverrideEnabled ||
			boot.BootSourceOverrideTarget == "" || boot.BootSourceOverrideTarget == schemas.NoneBootSource {
			return nil
		}
		var ok bool
		if dev, ok = deviceFor(boot.BootSourceOverrideTarget); !ok {
			return fmt.Errorf("the BMC's boot override %q has no Ferric boot device: %w", clip(string(boot.BootSourceOverrideTarget)), drivers.ErrNotSupported)
		}
		persistent = boot.BootSourceOverrideEnabled == schemas.ContinuousBootSourceOverrideEnabled
		return nil
	})
	if err != nil {
		return "", false, err
	}
	return dev, persistent, nil
}

// SupportedBootDevices implements drivers.BootDeviceReader: the devices
// whose targets the system lists in
// BootSourceOverrideTarget@Redfish.AllowableValues, or all five the driver
// maps when the system lists none.
func (d *Driver) SupportedBootDevices(ctx context.Context, n drivers.Node) ([]drivers.BootDevice, error) {
	var devs []drivers.BootDevice
	err := d.run(ctx, n, "list boot devices", func(o *operation) error {
		sys, err := o.system()
		if err != nil {
			return err
		}
		allowed := sys.Boot.AllowableBootSourceOverrideTargetValues
		for _, bt := range bootTargets {
			if len(allowed) == 0 || slices.Contains(allowed, bt.target) {
				devs = append(devs, bt.device)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return devs, nil
}

// SetBootDevice implements drivers.BootDeviceSetter with a PATCH of the
// system's Boot: the target, Once or Continuous, and
// BootSourceOverrideMode only when driver_info asks for one. A setting
// already in place is left alone.
func (d *Driver) SetBootDevice(ctx context.Context, n drivers.Node, dev drivers.BootDevice, persistent bool) error {
	op := fmt.Sprintf("set boot device %q", dev)
	target, ok := targetFor(dev)
	if !ok {
		return opError(n, op, fmt.Errorf("no Redfish boot source for it: %w", drivers.ErrNotSupported))
	}
	enabled := schemas.OnceBootSourceOverrideEnabled
	if persistent {
		enabled = schemas.ContinuousBootSourceOverrideEnabled
	}
	return d.run(ctx, n, op, func(o *operation) error {
		sys, err := o.system()
		if err != nil {
			return err
		}
		current := sys.Boot
		if allowed := current.AllowableBootSourceOverrideTargetValues; len(allowed) > 0 && !slices.Contains(allowed, target) {
			return fmt.Errorf("the BMC allows boot targets %s, not %s: %w", joinTargets(allowed), target, drivers.ErrNotSupported)
		}
		mode := o.cfg.bootMode
		if current.BootSourceOverrideTarget == target && current.BootSourceOverrideEnabled == enabled &&
			(mode == "" || current.BootSourceOverrideMode == mode) {
			return nil
		}
		return sys.SetBoot(&schemas.Boot{
			BootSourceOverrideTarget:  target,
			BootSourceOverrideEnabled: enabled,
			BootSourceOverrideMode:    mode, // omitted when empty
		})
	})
}

func joinTargets(ts []schemas.BootSource) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = clip(string(t))
	}
	return strings.Join(s, ", ")
}
