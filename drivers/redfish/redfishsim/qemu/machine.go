// Package qemu backs a simulated Redfish system with a qemu VM, so that
// the BMC's power, boot override and virtual media act on a real (if
// emulated) machine: a deploy ramdisk really PXE-boots, an image really
// lands on a disk.
//
// A Machine is one VM, managed through QMP (a small synchronous client in
// this package: one command at a time, every call under a deadline, no
// goroutine). Design choices:
//
//   - Power: Off means no qemu process. Power on starts qemu paused (-S)
//     with the boot order of this boot on the command line, connects QMP
//     and sends "cont". ForceOff is QMP "quit" (SIGKILL if qemu does not go
//     within the QMP timeout); GracefulShutdown is "system_powerdown" and
//     waits for the guest to power off, which ends qemu (no -no-shutdown);
//     ForceRestart is "system_reset". The power state comes from the
//     process (reaped by one goroutine per process) and "query-status".
//   - Boot order: the override maps to bootindex values of the NIC, disk
//     and CD (Pxe: NIC first; Hdd: disk first; Cd: CD first; otherwise
//     disk, CD, NIC). A power on puts the order on qemu's command line; a
//     ForceRestart sets it with "qom-set" on each device's bootindex, then
//     "system_reset"; SetBoot on a running machine sets it at once, for the
//     next reboot whoever makes it. A Once override is marked used by the
//     BMC-initiated boot that uses it, but qemu keeps that order until the
//     next SetBoot or BMC boot: the firmware reads the order some time after
//     the reset (a qom-set right after system_reset still changes that
//     boot), and QMP says nothing about when, so it cannot be restored
//     safely. A reboot by the guest itself therefore repeats a used-up Once
//     target; a client that minds sets the boot device before rebooting.
//   - Console: the serial port goes to Config.SerialLog (appended), and
//     SeaBIOS's serial console is turned on (fw_cfg etc/sercon-port, what
//     -nographic does) so that the firmware and iPXE show there too.
//   - Media: the CD is an ide-cd on "-drive if=none,media=cdrom"; insert
//     and eject are "blockdev-change-medium" and "eject" (forced: a guest
//     that locked the tray does not keep the BMC from ejecting). While off,
//     the image is remembered and put in the drive when qemu starts.
//   - Network: qemu's user mode (slirp) per NIC, optionally restricted
//     (restrict=on) so the guest reaches only the built-in DHCP, DNS and
//     TFTP and the guestfwd services; the TFTP root and bootfile give PXE
//     its first stage.
//   - Acceleration: TCG unless Config.Accel or FERRIC_QEMU_ACCEL asks
//     otherwise; KVM is never probed, since a /dev/kvm that hangs exists.
//   - Processes: qemu gets SIGKILL when the OS thread that started it
//     ends (Pdeathsig; Go ends threads only when a locked goroutine exits,
//     and then losing a VM beats leaking one when the test binary dies),
//     and Close kills and reaps it: no qemu outlives its Machine.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/drivers/redfish/redfishsim"
)

// Errors.
var (
	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("qemu: machine closed")
	// ErrStillOn is returned by GracefulShutdown when the guest did not
	// power off in time; the machine is left on, as a BMC would.
	ErrStillOn = errors.New("qemu: guest did not power off")
)

// Power states, as Redfish names them.
const (
	PowerOn  = "On"
	PowerOff = "Off"
)

// Boot override values, as Redfish names them.
const (
	BootNone = "None"
	BootPxe  = "Pxe"
	BootHdd  = "Hdd"
	BootCd   = "Cd"

	BootDisabled   = "Disabled"
	BootOnce       = "Once"
	BootContinuous = "Continuous"
)

// qdev ids of the devices whose bootindex the override sets.
const (
	devDisk = "disk"
	devCD   = "cd"
	devNIC  = "nic0"
)

// SMBIOS is the type 1 (system) SMBIOS table.
type SMBIOS struct {
	Manufacturer, Product, Version, Serial, UUID, SKU, Family string
}

// Forward is a guestfwd rule: a guest connection to Guest (ip:port, in
// 10.0.2.0/24 but not 10.0.2.2, which qemu refuses) reaches Host (ip:port).
type Forward struct {
	Guest, Host string
}

// Config describes a VM. Zero values take the documented defaults.
type Config struct {
	// Name is the VM's name (qemu -name), for logs and ps.
	Name string
	// Binary is the qemu system emulator (default qemu-system-x86_64).
	Binary string
	// Machine is the machine type (default "pc": i440fx with SeaBIOS,
	// whose IDE bus the CD uses).
	Machine string
	// Accel is the accelerator (default $FERRIC_QEMU_ACCEL, else "tcg").
	Accel string
	// MemoryMiB (default 512) and CPUs (default 1).
	MemoryMiB, CPUs int
	// Disk is the disk image; DiskFormat is "qcow2" or "raw" (default: from
	// the file name, qcow2 for ".qcow2", else raw). No disk: none attached.
	Disk, DiskFormat string
	// MACs has one entry per NIC, each on its own user-mode network; the
	// first is the one that PXE boots. At least one is needed.
	MACs []string
	// NICModel is the NIC device (default virtio-net-pci); NICROM its
	// option ROM (default: qemu's, for virtio-net efi-virtio.rom from
	// ipxe-qemu).
	NICModel, NICROM string
	// SMBIOS is the system table (-smbios type=1).
	SMBIOS SMBIOS
	// TFTPRoot and BootFile serve the PXE first stage from qemu's TFTP.
	TFTPRoot, BootFile string
	// Restrict isolates the guest (restrict=on): only DHCP, DNS, TFTP and
	// Forwards are reachable.
	Restrict bool
	// Forwards are guestfwd rules on every NIC's network.
	Forwards []Forward
	// SerialLog receives the serial console, appended across power cycles
	// (default: discarded).
	SerialLog string
	// CDImage is in the CD at the first power on (see InsertMedia).
	CDImage string
	// RunDir holds the QMP socket (default: a new temporary directory,
	// removed by Close). The socket path must stay short (108 bytes).
	RunDir string
	// ExtraArgs are appended to qemu's command line.
	ExtraArgs []string
	// QMPTimeout bounds each QMP command (default 5s); StartTimeout the
	// wait for qemu's QMP socket (default 10s); ShutdownTimeout the wait for
	// a guest to power off after GracefulShutdown (default 60s).
	QMPTimeout, StartTimeout, ShutdownTimeout time.Duration
}

// Machine is one qemu VM behind a BMC. It is safe for concurrent use;
// operations that change the machine run one at a time.
type Machine struct {
	cfg    Config
	runDir string
	ownDir bool

	op sync.Mutex // serialises power, boot and media operations

	mu     sync.Mutex // guards the fields below; never held across a wait
	proc   *process   // nil, or the last qemu started (possibly exited)
	target string     // boot override target
	enable string     // boot override enabled
	cd     string     // image in the CD ("" empty)
	closed bool
}

// process is one qemu run.
type process struct {
	cmd    *exec.Cmd
	qmp    *qmpConn
	exited chan struct{} // closed by the reaper once Wait returns
	stderr *tailBuffer
	err    error // Wait's result; read after exited is closed
}

func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// New validates cfg and returns a powered-off Machine. It starts nothing.
func New(cfg Config) (*Machine, error) {
	if cfg.Binary == "" {
		cfg.Binary = "qemu-system-x86_64"
	}
	if cfg.Machine == "" {
		cfg.Machine = "pc"
	}
	if cfg.Accel == "" {
		cfg.Accel = os.Getenv("FERRIC_QEMU_ACCEL")
	}
	if cfg.Accel == "" {
		cfg.Accel = "tcg"
	}
	if cfg.MemoryMiB <= 0 {
		cfg.MemoryMiB = 512
	}
	if cfg.CPUs <= 0 {
		cfg.CPUs = 1
	}
	if cfg.NICModel == "" {
		cfg.NICModel = "virtio-net-pci"
	}
	if cfg.DiskFormat == "" && cfg.Disk != "" {
		cfg.DiskFormat = "raw"
		if strings.HasSuffix(cfg.Disk, ".qcow2") {
			cfg.DiskFormat = "qcow2"
		}
	}
	if cfg.QMPTimeout <= 0 {
		cfg.QMPTimeout = 5 * time.Second
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 60 * time.Second
	}
	if len(cfg.MACs) == 0 {
		return nil, errors.New("qemu: config: at least one MAC is needed")
	}
	if cfg.DiskFormat != "" && cfg.DiskFormat != "raw" && cfg.DiskFormat != "qcow2" {
		return nil, fmt.Errorf("qemu: config: disk format %q: want raw or qcow2", cfg.DiskFormat)
	}
	if _, err := exec.LookPath(cfg.Binary); err != nil {
		return nil, fmt.Errorf("qemu: config: %w", err)
	}
	m := &Machine{cfg: cfg, runDir: cfg.RunDir, target: BootNone, enable: BootDisabled, cd: cfg.CDImage}
	if _, err := m.args(defaultOrder(), m.cd); err != nil { // reject bad values now, not at power on
		return nil, err
	}
	if m.runDir == "" {
		dir, err := os.MkdirTemp("", "ferric-qemu-")
		if err != nil {
			return nil, fmt.Errorf("qemu: run dir: %w", err)
		}
		m.runDir, m.ownDir = dir, true
	}
	return m, nil
}

// Config returns the configuration with defaults applied.
func (m *Machine) Config() Config { return m.cfg }

func (m *Machine) qmpPath() string { return filepath.Join(m.runDir, "qmp.sock") }

// serconPath is the fw_cfg file holding SeaBIOS's serial console port,
// COM1 (0x3f8) as a little-endian integer.
func (m *Machine) serconPath() string { return filepath.Join(m.runDir, "sercon-port") }

// bootOrder is the bootindex of each device for one boot.
type bootOrder map[string]int

func defaultOrder() bootOrder { return bootOrder{devDisk: 1, devCD: 2, devNIC: 3} }

// orderFor maps a boot override target to a boot order.
func orderFor(target string) bootOrder {
	switch target {
	case BootPxe:
		return bootOrder{devNIC: 1, devDisk: 2, devCD: 3}
	case BootCd:
		return bootOrder{devCD: 1, devDisk: 2, devNIC: 3}
	default: // Hdd, None
		return defaultOrder()
	}
}

// nextOrder is the order of the next boot. Called with m.mu held.
func (m *Machine) nextOrder() bootOrder {
	if m.enable == BootDisabled {
		return defaultOrder()
	}
	return orderFor(m.target)
}

// booted records that a BMC-initiated boot happened: a Once override is
// used up. Called with m.mu held.
func (m *Machine) booted() {
	if m.enable == BootOnce {
		m.target, m.enable = BootNone, BootDisabled
	}
}

// escape doubles commas, qemu's quoting inside an option value.
func escape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// args builds qemu's command line for a power on with order and cd.
func (m *Machine) args(order bootOrder, cd string) ([]string, error) {
	c := m.cfg
	for _, v := range append([]string{c.Name, c.Disk, c.TFTPRoot, c.BootFile, c.SerialLog, cd, c.NICROM}, c.MACs...) {
		if strings.ContainsAny(v, "\n\x00") {
			return nil, fmt.Errorf("qemu: config: value %q has a newline or NUL", v)
		}
	}
	a := []string{
		"-nodefaults", "-no-user-config",
		"-machine", c.Machine, "-accel", c.Accel,
		"-m", strconv.Itoa(c.MemoryMiB), "-smp", strconv.Itoa(c.CPUs),
		"-display", "none", "-vga", "none",
		"-qmp", "unix:" + escape(m.qmpPath()) + ",server=on,wait=off",
		"-S",
	}
	if c.Name != "" {
		a = append(a, "-name", escape(c.Name))
	}
	if s := smbiosArg(c.SMBIOS); s != "" {
		a = append(a, "-smbios", s)
	}
	if c.SerialLog != "" {
		// A file chardev, not -serial file:, so that the log is appended
		// across power cycles instead of truncated.
		a = append(a, "-chardev", "file,id=serial0,append=on,path="+escape(c.SerialLog), "-serial", "chardev:serial0")
		// SeaBIOS's serial console (what -nographic turns on), so that
		// the firmware and iPXE show on serial too, as with a BMC's
		// console redirection. qemu warns that the name lacks "opt/".
		a = append(a, "-fw_cfg", "name=etc/sercon-port,file="+escape(m.serconPath()))
	} else {
		a = append(a, "-serial", "null")
	}
	if c.Disk != "" {
		a = append(a,
			"-drive", "if=none,id=disk0,format="+c.DiskFormat+",file="+escape(c.Disk),
			"-device", "virtio-blk-pci,drive=disk0,id="+devDisk+",bootindex="+strconv.Itoa(order[devDisk]))
	}
	drive := "if=none,id=cd0,media=cdrom"
	if cd != "" {
		drive += ",format=raw,readonly=on,file=" + escape(cd)
	}
	a = append(a, "-drive", drive, "-device", "ide-cd,drive=cd0,id="+devCD+",bootindex="+strconv.Itoa(order[devCD]))
	for i, mac := range c.MACs {
		nd := "user,id=net" + strconv.Itoa(i)
		if c.Restrict {
			nd += ",restrict=on"
		}
		if c.TFTPRoot != "" {
			nd += ",tftp=" + escape(c.TFTPRoot)
		}
		if c.BootFile != "" {
			nd += ",bootfile=" + escape(c.BootFile)
		}
		for _, f := range c.Forwards {
			if f.Guest == "" || f.Host == "" || strings.ContainsAny(f.Guest+f.Host, ",-") {
				return nil, fmt.Errorf("qemu: config: forward %q -> %q: want ip:port on both sides", f.Guest, f.Host)
			}
			nd += ",guestfwd=tcp:" + f.Guest + "-tcp:" + f.Host
		}
		dev := c.NICModel + ",netdev=net" + strconv.Itoa(i) + ",id=nic" + strconv.Itoa(i) + ",mac=" + escape(mac)
		if i == 0 {
			// Only the first NIC boots; others keep no boot index.
			dev += ",bootindex=" + strconv.Itoa(order[devNIC])
		}
		if c.NICROM != "" {
			dev += ",romfile=" + escape(c.NICROM)
		}
		a = append(a, "-netdev", nd, "-device", dev)
	}
	return append(a, c.ExtraArgs...), nil
}

func smbiosArg(s SMBIOS) string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"manufacturer", s.Manufacturer}, {"product", s.Product}, {"version", s.Version},
		{"serial", s.Serial}, {"uuid", s.UUID}, {"sku", s.SKU}, {"family", s.Family},
	} {
		if kv[1] != "" {
			b.WriteString("," + kv[0] + "=" + escape(kv[1]))
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "type=1" + b.String()
}

// running returns the live process, or nil when off. Called with m.mu
// held.
func (m *Machine) running() *process {
	if m.proc != nil && m.proc.alive() {
		return m.proc
	}
	return nil
}

// lockOp takes the operation lock and fails after Close.
func (m *Machine) lockOp() error {
	m.op.Lock()
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		m.op.Unlock()
		return ErrClosed
	}
	return nil
}

// PowerState returns On or Off. An operation under way is not visible: the
// state is the one before it until it completes (a power on is recorded
// once qemu runs).
func (m *Machine) PowerState(ctx context.Context) (string, error) {
	m.mu.Lock()
	p := m.running()
	m.mu.Unlock()
	if p == nil {
		return PowerOff, nil
	}
	st, err := m.status(ctx, p)
	if err != nil {
		if !p.alive() {
			return PowerOff, nil
		}
		return "", err
	}
	switch st {
	case "prelaunch": // stopped by -S before cont: the guest has not started
		return PowerOff, nil
	case "shutdown": // only with -no-shutdown, which we do not use: qemu is about to exit
		return PowerOff, nil
	default: // running, paused, guest-panicked, ...: powered, whatever the guest does
		return PowerOn, nil
	}
}

// Status returns QMP's run state ("running", "prelaunch", ...), or "" when
// qemu is not running.
func (m *Machine) Status(ctx context.Context) (string, error) {
	m.mu.Lock()
	p := m.running()
	m.mu.Unlock()
	if p == nil {
		return "", nil
	}
	return m.status(ctx, p)
}

func (m *Machine) status(ctx context.Context, p *process) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := p.qmp.Execute(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

// PID returns the qemu process id, or 0 when off.
func (m *Machine) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.running(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// On powers the machine on; a no-op when it is on.
func (m *Machine) On(ctx context.Context) error {
	if err := m.lockOp(); err != nil {
		return err
	}
	defer m.op.Unlock()
	return m.powerOn(ctx)
}

// powerOn starts qemu paused with the next boot's order, then runs it.
// Called with m.op held.
func (m *Machine) powerOn(ctx context.Context) error {
	m.mu.Lock()
	if m.running() != nil {
		m.mu.Unlock()
		return nil
	}
	order, cd, old := m.nextOrder(), m.cd, m.proc
	m.mu.Unlock()
	if old != nil && old.qmp != nil {
		_ = old.qmp.Close() // a qemu that ended by itself (guest power off)
	}

	args, err := m.args(order, cd)
	if err != nil {
		return err
	}
	_ = os.Remove(m.qmpPath()) // left by a qemu that was killed
	if err := os.WriteFile(m.serconPath(), []byte{0xf8, 0x03}, 0o600); err != nil {
		return fmt.Errorf("qemu: power on: %w", err)
	}
	cmd := exec.Command(m.cfg.Binary, args...)
	// Not CommandContext: the VM outlives the request that powers it on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &process{cmd: cmd, exited: make(chan struct{}), stderr: &tailBuffer{max: 4096}}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("qemu: start: %w", err)
	}
	go func() { // the reaper: ends when qemu does, which Close guarantees
		p.err = cmd.Wait()
		close(p.exited)
	}()

	sctx, cancel := context.WithTimeout(ctx, m.cfg.StartTimeout)
	defer cancel()
	q, err := dialQMP(sctx, m.qmpPath(), m.cfg.QMPTimeout, p.exited)
	if err != nil {
		kill(p)
		return fmt.Errorf("qemu: power on: %w; %s", err, p.stderr)
	}
	p.qmp = q
	if err := q.Execute(ctx, "cont", nil, nil); err != nil {
		kill(p)
		return fmt.Errorf("qemu: power on: %w; %s", err, p.stderr)
	}
	m.mu.Lock()
	m.proc = p
	m.booted()
	m.mu.Unlock()
	return nil
}

// setOrder sets every device's bootindex. qemu refuses an index already
// held by another device, so all first drop theirs (-1).
func (m *Machine) setOrder(ctx context.Context, p *process, to bootOrder) error {
	var devs []string
	for _, dev := range []string{devDisk, devCD, devNIC} {
		if dev != devDisk || m.cfg.Disk != "" {
			devs = append(devs, dev)
		}
	}
	for _, pass := range []func(string) int{func(string) int { return -1 }, func(d string) int { return to[d] }} {
		for _, dev := range devs {
			args := map[string]any{"path": "/machine/peripheral/" + dev, "property": "bootindex", "value": pass(dev)}
			if err := p.qmp.Execute(ctx, "qom-set", args, nil); err != nil {
				return fmt.Errorf("qemu: boot order: %w", err)
			}
		}
	}
	return nil
}

// BootIndexes reads each device's bootindex from qemu ("disk", "cd",
// "nic0"); nil when off.
func (m *Machine) BootIndexes(ctx context.Context) (map[string]int, error) {
	m.mu.Lock()
	p := m.running()
	m.mu.Unlock()
	if p == nil {
		return nil, nil
	}
	out := map[string]int{}
	for _, dev := range []string{devDisk, devCD, devNIC} {
		if dev == devDisk && m.cfg.Disk == "" {
			continue
		}
		var v int
		args := map[string]any{"path": "/machine/peripheral/" + dev, "property": "bootindex"}
		if err := p.qmp.Execute(ctx, "qom-get", args, &v); err != nil {
			return nil, fmt.Errorf("qemu: boot order: %w", err)
		}
		out[dev] = v
	}
	return out, nil
}

// ForceOff powers off at once (QMP quit); a no-op when off.
func (m *Machine) ForceOff(ctx context.Context) error {
	if err := m.lockOp(); err != nil {
		return err
	}
	defer m.op.Unlock()
	return m.forceOff(ctx)
}

// forceOff asks qemu to quit and kills it if it does not. Called with m.op
// held.
func (m *Machine) forceOff(ctx context.Context) error {
	m.mu.Lock()
	p := m.running()
	m.mu.Unlock()
	if p == nil {
		return nil
	}
	// quit may be answered or not before qemu closes the socket; either
	// way the process is what counts.
	_ = p.qmp.Execute(ctx, "quit", nil, nil)
	t := time.NewTimer(m.cfg.QMPTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		kill(p)
	case <-ctx.Done():
		kill(p)
	}
	_ = p.qmp.Close()
	return nil
}

// kill sends SIGKILL and waits for the reaper.
func kill(p *process) {
	_ = p.cmd.Process.Kill()
	<-p.exited
	if p.qmp != nil {
		_ = p.qmp.Close()
	}
}

// GracefulShutdown presses the ACPI power button and waits up to
// Config.ShutdownTimeout (or ctx) for the guest to power off. A guest that
// does not is left on and ErrStillOn returned.
func (m *Machine) GracefulShutdown(ctx context.Context) error {
	if err := m.lockOp(); err != nil {
		return err
	}
	m.mu.Lock()
	p := m.running()
	m.mu.Unlock()
	if p == nil {
		m.op.Unlock()
		return nil
	}
	err := p.qmp.Execute(ctx, "system_powerdown", nil, nil)
	// Wait without the operation lock: a ForceOff may come meanwhile.
	m.op.Unlock()
	if err != nil {
		return fmt.Errorf("qemu: graceful shutdown: %w", err)
	}
	t := time.NewTimer(m.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
		_ = p.qmp.Close()
		return nil
	case <-t.C:
		return ErrStillOn
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrStillOn, ctx.Err())
	}
}

// PushPowerButton presses the power button: ACPI power-off when on (not
// waiting), power on when off.
func (m *Machine) PushPowerButton(ctx context.Context) error {
	if err := m.lockOp(); err != nil {
		return err
	}
	defer m.op.Unlock()
	m.mu.Lock()
	p := m.running()
	m.mu.Unlock()
	if p == nil {
		return m.powerOn(ctx)
	}
	if err := p.qmp.Execute(ctx, "system_powerdown", nil, nil); err != nil {
		return fmt.Errorf("qemu: power button: %w", err)
	}
	return nil
}

// ForceRestart resets the machine (QMP system_reset) with the boot
// override applied; powers it on when off, like the simulator.
func (m *Machine) ForceRestart(ctx context.Context) error {
	if err := m.lockOp(); err != nil {
		return err
	}
	defer m.op.Unlock()
	m.mu.Lock()
	p := m.running()
	order := m.nextOrder()
	m.mu.Unlock()
	if p == nil {
		return m.powerOn(ctx)
	}
	// qemu may hold another order (that of the last boot): set it.
	if err := m.setOrder(ctx, p, order); err != nil {
		return err
	}
	if err := p.qmp.Execute(ctx, "system_reset", nil, nil); err != nil {
		return fmt.Errorf("qemu: reset: %w", err)
	}
	m.mu.Lock()
	m.booted()
	m.mu.Unlock()
	return nil
}

// PowerCycle is ForceOff then On.
func (m *Machine) PowerCycle(ctx context.Context) error {
	if err := m.lockOp(); err != nil {
		return err
	}
	defer m.op.Unlock()
	if err := m.forceOff(ctx); err != nil {
		return err
	}
	return m.powerOn(ctx)
}

// Nmi injects a non-maskable interrupt; a no-op when off.
func (m *Machine) Nmi(ctx context.Context) error {
	m.mu.Lock()
	p := m.running()
	m.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.qmp.Execute(ctx, "inject-nmi", nil, nil); err != nil {
		return fmt.Errorf("qemu: nmi: %w", err)
	}
	return nil
}

// Reset performs a Redfish ResetType. GracefulRestart is a graceful
// shutdown followed by power on (qemu has no ACPI reboot request).
func (m *Machine) Reset(ctx context.Context, resetType string) error {
	switch resetType {
	case "On", "ForceOn":
		return m.On(ctx)
	case "ForceOff":
		return m.ForceOff(ctx)
	case "GracefulShutdown":
		return m.GracefulShutdown(ctx)
	case "GracefulRestart":
		if err := m.GracefulShutdown(ctx); err != nil {
			return err
		}
		return m.On(ctx)
	case "ForceRestart":
		return m.ForceRestart(ctx)
	case "PowerCycle":
		return m.PowerCycle(ctx)
	case "PushPowerButton":
		return m.PushPowerButton(ctx)
	case "Nmi":
		return m.Nmi(ctx)
	}
	return fmt.Errorf("qemu: reset type %q not implemented", resetType)
}

// Boot returns the boot override: target (None, Pxe, Hdd, Cd) and enabled
// (Disabled, Once, Continuous).
func (m *Machine) Boot() (target, enabled string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.target, m.enable
}

// SetBoot sets the boot override. On a running machine the order is set in
// qemu at once, for the next reboot whoever makes it.
func (m *Machine) SetBoot(ctx context.Context, target, enabled string) error {
	switch target {
	case BootNone, BootPxe, BootHdd, BootCd:
	default:
		return fmt.Errorf("qemu: boot target %q: want None, Pxe, Hdd or Cd", target)
	}
	switch enabled {
	case BootDisabled, BootOnce, BootContinuous:
	default:
		return fmt.Errorf("qemu: boot enabled %q: want Disabled, Once or Continuous", enabled)
	}
	if err := m.lockOp(); err != nil {
		return err
	}
	defer m.op.Unlock()
	m.mu.Lock()
	m.target, m.enable = target, enabled
	if enabled == BootDisabled {
		m.target = BootNone
	}
	p, order := m.running(), m.nextOrder()
	m.mu.Unlock()
	if p == nil {
		return nil
	}
	return m.setOrder(ctx, p, order)
}

// InsertMedia puts image (an ISO, opened read-only as raw) in the CD.
func (m *Machine) InsertMedia(ctx context.Context, image string) error {
	if _, err := os.Stat(image); err != nil {
		return fmt.Errorf("qemu: insert media: %w", err)
	}
	if err := m.lockOp(); err != nil {
		return err
	}
	defer m.op.Unlock()
	m.mu.Lock()
	p := m.running()
	m.mu.Unlock()
	if p != nil {
		args := map[string]any{"id": devCD, "filename": image, "format": "raw", "read-only-mode": "read-only"}
		if err := p.qmp.Execute(ctx, "blockdev-change-medium", args, nil); err != nil {
			return fmt.Errorf("qemu: insert media: %w", err)
		}
	}
	m.mu.Lock()
	m.cd = image
	m.mu.Unlock()
	return nil
}

// EjectMedia empties the CD, even if the guest locked it.
func (m *Machine) EjectMedia(ctx context.Context) error {
	if err := m.lockOp(); err != nil {
		return err
	}
	defer m.op.Unlock()
	m.mu.Lock()
	p := m.running()
	m.mu.Unlock()
	if p != nil {
		if err := p.qmp.Execute(ctx, "eject", map[string]any{"id": devCD, "force": true}, nil); err != nil {
			return fmt.Errorf("qemu: eject media: %w", err)
		}
	}
	m.mu.Lock()
	m.cd = ""
	m.mu.Unlock()
	return nil
}

// Media returns the image in the CD ("" when empty): as qemu reports it
// (query-block) when on, as remembered when off.
func (m *Machine) Media(ctx context.Context) (string, error) {
	m.mu.Lock()
	p, cd := m.running(), m.cd
	m.mu.Unlock()
	if p == nil {
		return cd, nil
	}
	var blocks []struct {
		QDev     string `json:"qdev"`
		Inserted *struct {
			File string `json:"file"`
		} `json:"inserted"`
	}
	if err := p.qmp.Execute(ctx, "query-block", nil, &blocks); err != nil {
		return "", fmt.Errorf("qemu: media: %w", err)
	}
	for _, b := range blocks {
		if b.QDev == devCD || strings.HasPrefix(b.QDev, "/machine/peripheral/"+devCD+"/") {
			if b.Inserted == nil {
				return "", nil
			}
			return b.Inserted.File, nil
		}
	}
	return "", errors.New("qemu: media: no CD in query-block")
}

// Close kills qemu, waits for it and removes the run directory it created.
// Close is idempotent; every other method fails with ErrClosed after it.
func (m *Machine) Close() error {
	m.op.Lock()
	defer m.op.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	p := m.proc
	m.mu.Unlock()
	if p != nil {
		kill(p)
	}
	if m.ownDir {
		if err := os.RemoveAll(m.runDir); err != nil {
			return fmt.Errorf("qemu: close: %w", err)
		}
	}
	return nil
}

// tailBuffer keeps the last max bytes written, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.TrimSpace(t.b))
	if s == "" {
		return "qemu said nothing"
	}
	return "qemu: " + s
}

// A Machine can back a simulated Redfish system.
var _ redfishsim.SystemBackend = (*Machine)(nil)
