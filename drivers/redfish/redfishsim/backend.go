package redfishsim

import "context"

// SystemBackend is a machine behind a simulated system: a real (or
// emulated) computer whose power, boot override and virtual media the BMC
// acts on, instead of only recording them. The qemu subpackage provides one
// (qemu.Machine). Nothing in the simulator calls it yet: wiring it into the
// handlers (outside s.mu, since these calls take seconds) is the next step.
//
// Values are Redfish's: PowerState returns "On" or "Off";
// Reset takes a ResetType ("On", "ForceOff", "GracefulShutdown",
// "ForceRestart", ...); SetBoot takes a BootSourceOverrideTarget ("None",
// "Pxe", "Hdd", "Cd") and BootSourceOverrideEnabled ("Disabled", "Once",
// "Continuous"). Every method is bounded by ctx.
type SystemBackend interface {
	PowerState(ctx context.Context) (string, error)
	Reset(ctx context.Context, resetType string) error
	SetBoot(ctx context.Context, target, enabled string) error
	InsertMedia(ctx context.Context, image string) error
	EjectMedia(ctx context.Context) error
	// Close releases the machine (a VM is killed).
	Close() error
}
