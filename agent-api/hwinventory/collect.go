package hwinventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/agent-api/disks"
)

// Machine is what the agent knows of the hardware it runs on: the
// inventory it sends, and the same disks as the agent opens them.
type Machine struct {
	Inventory agentwire.Inventory
	Disks     []disks.Disk // in the order of Inventory.Disks
}

// CommandRunner runs a command and returns its standard output. It must
// respect ctx's deadline; the error says why it failed (stderr included).
type CommandRunner func(ctx context.Context, name string, args ...string) ([]byte, error)

// Defaults for Options.
const (
	DefaultCommandTimeout = 10 * time.Second
	DefaultBMCTimeout     = 30 * time.Second
)

// Options say what Collect reads.
type Options struct {
	// Root is the machine's root directory: "/" (the default) or a recorded
	// tree, with sysfs at Root/sys, procfs at Root/proc and Root/dev.
	Root string
	// BootMAC is the kernel's BOOTIF= argument (01-aa-bb-cc-dd-ee-ff or a
	// plain MAC): the interface that booted, boot.pxe_interface. See
	// ParseBOOTIF.
	BootMAC string
	// Addresses returns an interface's first IPv4 and IPv6 addresses. Nil
	// means the running system's (net.InterfaceByName) when Root is "/",
	// and none otherwise: a recorded tree has no live addresses.
	Addresses func(ifname string) (v4, v6 string)
	// IPMITool is the ipmitool program; "" looks it up in PATH (or names
	// it "ipmitool" for an injected Run).
	IPMITool string
	// Run runs ipmitool. Nil runs it for real, with CommandTimeout.
	Run CommandRunner
	// CommandTimeout bounds each ipmitool run (DefaultCommandTimeout);
	// BMCTimeout bounds all of them together (DefaultBMCTimeout).
	CommandTimeout time.Duration
	BMCTimeout     time.Duration
	// Hostname overrides the kernel's (Root/proc/sys/kernel/hostname).
	Hostname string
	// Logger gets what was skipped and why; nil discards it.
	Logger *slog.Logger
}

// Collect inventories the machine under opts.Root. Missing optional facts
// (DMI, a BMC, a disk's serial number...) are left out; what every Linux
// machine has (interfaces with a MAC address, /proc/cpuinfo, /proc/meminfo,
// /sys/block) is required, and its absence means Root is not a machine. An
// invalid BootMAC is an error too, ParseBOOTIF's. Asking the BMC takes at
// most BMCTimeout; reading files takes milliseconds.
func Collect(ctx context.Context, opts Options) (*Machine, error) {
	return collect(ctx, opts, nil)
}

func collect(ctx context.Context, opts Options, rec *recorder) (*Machine, error) {
	c, err := newCollector(opts, rec)
	if err != nil {
		return nil, err
	}
	inv := &agentwire.Inventory{}
	if inv.Interfaces, err = c.interfaces(); err != nil {
		return nil, err
	}
	if inv.CPU, err = c.cpu(); err != nil {
		return nil, err
	}
	if inv.Memory, err = c.memory(); err != nil {
		return nil, err
	}
	blockDevices, err := c.disks()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("collecting the inventory: %w", err)
	}
	inv.SystemVendor = c.systemVendor()
	inv.Boot = c.boot()
	inv.Hostname = c.hostname()
	bmc := c.bmc(ctx)
	inv.BMCAddress, inv.BMCv6Address, inv.BMCMAC = bmc.v4, bmc.v6, bmc.mac
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("collecting the inventory: %w", err)
	}
	m := &Machine{}
	for _, d := range blockDevices {
		inv.Disks = append(inv.Disks, d.wire())
		m.Disks = append(m.Disks, d.Disk)
	}
	m.Inventory = *inv
	return m, nil
}

// collector holds one Collect's options and the tree it reads.
type collector struct {
	opts    Options
	t       *tree
	live    bool // Root is this running system
	bootMAC string
	log     *slog.Logger
}

func newCollector(opts Options, rec *recorder) (*collector, error) {
	root := opts.Root
	if root == "" {
		root = "/"
	}
	root = filepath.Clean(root)
	c := &collector{opts: opts, t: newTree(root, rec), live: root == "/", log: opts.Logger}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.BootMAC != "" {
		mac, err := ParseBOOTIF(opts.BootMAC)
		if err != nil {
			return nil, err
		}
		c.bootMAC = mac
	}
	if c.opts.Addresses == nil && c.live {
		c.opts.Addresses = liveAddresses
	}
	if c.opts.CommandTimeout <= 0 {
		c.opts.CommandTimeout = DefaultCommandTimeout
	}
	if c.opts.BMCTimeout <= 0 {
		c.opts.BMCTimeout = DefaultBMCTimeout
	}
	return c, nil
}

// ParseBOOTIF returns the MAC address of a BOOTIF= kernel argument, lower
// case with colons. pxelinux writes it as 01-aa-bb-cc-dd-ee-ff, 01 being
// the ARP hardware type of Ethernet; a plain MAC in any notation net.ParseMAC
// reads is accepted too.
func ParseBOOTIF(bootif string) (string, error) {
	s := strings.TrimSpace(bootif)
	if len(s) == 20 && strings.HasPrefix(s, "01-") {
		s = s[3:]
	}
	hw, err := net.ParseMAC(s)
	// A multicast address is no interface's: "01-aa-bb-cc-dd-ee" is a
	// truncated pxelinux form.
	if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
		return "", fmt.Errorf("BOOTIF %q is not an interface's MAC address (01-aa-bb-cc-dd-ee-ff or aa:bb:cc:dd:ee:ff)", bootif)
	}
	return hw.String(), nil
}

// liveAddresses returns an interface's first IPv4 and first IPv6 address,
// as IPA does (psutil lists them in the kernel's order).
func liveAddresses(name string) (v4, v6 string) {
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return "", ""
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return "", ""
	}
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip4 := ipnet.IP.To4(); ip4 != nil {
			if v4 == "" {
				v4 = ip4.String()
			}
		} else if v6 == "" {
			v6 = ipnet.IP.String()
		}
	}
	return v4, v6
}

// maxCommandOutput bounds what is kept of a command's output: ipmitool
// prints a few KiB.
const maxCommandOutput = 1 << 20

// execRunner runs a program with ctx's deadline, keeping at most
// maxCommandOutput bytes of its output.
func execRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr boundedBuffer
	stdout.limit, stderr.limit = maxCommandOutput, 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second // a child keeping the pipes open must not outlive the deadline
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), ctxErr)
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return nil, fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// boundedBuffer keeps the first limit bytes written to it and drops the
// rest without failing the writer. (It must not embed bytes.Buffer, whose
// ReadFrom io.Copy would use instead of Write.)
type boundedBuffer struct {
	buf   bytes.Buffer
	limit int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *boundedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *boundedBuffer) String() string { return b.buf.String() }

// errNoInterfaces is Collect's error for a machine with no network
// interface to be found by.
var errNoInterfaces = errors.New("no network interface with a MAC address under sys/class/net")
