package agent

import (
	"context"
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/agent-api/hwinventory"
)

// LinuxMachine is the Linux machine the agent runs on.
type LinuxMachine struct {
	BootMAC string // BOOTIF
	Log     *slog.Logger
}

// Machine inventories the running machine.
func (l *LinuxMachine) Machine(ctx context.Context) (*hwinventory.Machine, error) {
	return hwinventory.Collect(ctx, hwinventory.Options{Root: "/", BootMAC: l.BootMAC, Logger: l.Log})
}

// PowerOff syncs the disks and powers the machine off.
func (l *LinuxMachine) PowerOff() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}

// Reboot syncs the disks and restarts the machine.
func (l *LinuxMachine) Reboot() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// SimulatedMachine is a machine described by a hardware profile: its disks
// are files and its power commands only log.
type SimulatedMachine struct {
	Profile *hwinventory.Profile
	Log     *slog.Logger
}

// Machine returns the profile's machine.
func (s *SimulatedMachine) Machine(context.Context) (*hwinventory.Machine, error) {
	return s.Profile.Machine()
}

// PowerOff logs.
func (s *SimulatedMachine) PowerOff() error {
	s.Log.Info("simulated machine: power off (nothing done)")
	return errSimulatedPower
}

// Reboot logs.
func (s *SimulatedMachine) Reboot() error {
	s.Log.Info("simulated machine: reboot (nothing done)")
	return errSimulatedPower
}
