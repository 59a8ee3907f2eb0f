package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// diskMarker is what the test disk's boot sector prints on COM1.
const diskMarker = "FERRIC-DISK-OK"

// bootSector is a BIOS boot sector that writes diskMarker to COM1 (0x3f8)
// and halts. qemu's UART needs no set-up to transmit.
func bootSector() []byte {
	code := []byte{
		0x31, 0xC0, // xor ax, ax
		0x8E, 0xD8, // mov ds, ax
		0xFC,             // cld
		0xBE, 0x17, 0x7C, // mov si, 0x7c17 (msg)
		0xBA, 0xF8, 0x03, // mov dx, 0x3f8
		0xAC,       // lodsb
		0x84, 0xC0, // test al, al
		0x74, 0x03, // jz +3 (halt)
		0xEE,       // out dx, al
		0xEB, 0xF8, // jmp lodsb
		0xFA,       // cli
		0xF4,       // hlt
		0xEB, 0xFC, // jmp cli
	}
	code = append(code, diskMarker+"\r\n\x00"...)
	sector := make([]byte, 512)
	copy(sector, code)
	sector[510], sector[511] = 0x55, 0xAA
	return sector
}

// needQemu skips without qemu-system-x86_64, unless CI is set.
func needQemu(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and qemu is missing (Debian: qemu-system-x86 ipxe-qemu): %v", err)
		}
		t.Skipf("qemu-system-x86_64 not found (Debian: qemu-system-x86 ipxe-qemu): %v", err)
	}
}

// waitSerial waits until the serial log holds want at least n times.
func waitSerial(ctx context.Context, t *testing.T, path, want string, n int) {
	t.Helper()
	for {
		b, _ := os.ReadFile(path)
		if bytes.Count(b, []byte(want)) >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("serial log: %q seen %d times, want %d (%v); log:\n%s", want, bytes.Count(b, []byte(want)), n, ctx.Err(), b)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func mustState(ctx context.Context, t *testing.T, m *Machine, want string) {
	t.Helper()
	got, err := m.PowerState(ctx)
	if err != nil || got != want {
		t.Fatalf("PowerState = %q, %v; want %q", got, err, want)
	}
}

func mustOrder(ctx context.Context, t *testing.T, m *Machine, first string) {
	t.Helper()
	idx, err := m.BootIndexes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if idx[first] != 1 {
		t.Fatalf("boot indexes %v: want %s first", idx, first)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestMachine drives one TCG VM through a BMC's life: power on to the disk,
// a Once PXE override used by a reset (iPXE fetches the bootfile from
// qemu's TFTP) and then gone, media insert and eject, an ignored graceful
// shutdown, force off, media remembered while off, and Close.
func TestMachine(t *testing.T) {
	needQemu(t)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	img := make([]byte, 1<<20)
	copy(img, bootSector())
	tftp := filepath.Join(dir, "tftp")
	iso := filepath.Join(dir, "cd.iso")
	serial := filepath.Join(dir, "serial.log")
	for path, data := range map[string][]byte{disk: img, iso: make([]byte, 1<<20)} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(tftp, 0o755); err != nil {
		t.Fatal(err)
	}
	// A script iPXE fetches and runs, then waits in, so that nothing else
	// boots meanwhile.
	if err := os.WriteFile(filepath.Join(tftp, "boot.ipxe"), []byte("#!ipxe\necho FERRIC-IPXE-SCRIPT\nsleep 600\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	m, err := New(Config{
		Name:            "ferric-test",
		MemoryMiB:       128,
		Disk:            disk,
		MACs:            []string{"52:54:00:fe:00:01"},
		SMBIOS:          SMBIOS{Manufacturer: "Ferric", Product: "qemu-test", Serial: "SIM-1"},
		TFTPRoot:        tftp,
		BootFile:        "boot.ipxe",
		Restrict:        true,
		SerialLog:       serial,
		ShutdownTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()

	mustState(ctx, t, m, PowerOff)
	if err := m.On(ctx); err != nil {
		t.Fatal(err)
	}
	mustState(ctx, t, m, PowerOn)
	if st, err := m.Status(ctx); err != nil || st != "running" {
		t.Fatalf("Status = %q, %v; want running", st, err)
	}
	mustOrder(ctx, t, m, devDisk)
	waitSerial(ctx, t, serial, diskMarker, 1)

	// A Once PXE override is set in qemu at once and used by the reset.
	if err := m.SetBoot(ctx, BootPxe, BootOnce); err != nil {
		t.Fatal(err)
	}
	mustOrder(ctx, t, m, devNIC)
	if err := m.Reset(ctx, "ForceRestart"); err != nil {
		t.Fatal(err)
	}
	waitSerial(ctx, t, serial, "FERRIC-IPXE-SCRIPT", 1)
	if target, enabled := m.Boot(); target != BootNone || enabled != BootDisabled {
		t.Fatalf("after the PXE boot, override = %s/%s; want None/Disabled", target, enabled)
	}
	// qemu keeps the order of that boot (see the package doc).
	mustOrder(ctx, t, m, devNIC)
	if b, _ := os.ReadFile(serial); !bytes.Contains(b, []byte("iPXE")) || bytes.Count(b, []byte(diskMarker)) != 1 {
		t.Fatalf("after the PXE boot, want the iPXE banner and one disk boot; log:\n%s", b)
	}
	// The next reset boots the disk again.
	if err := m.ForceRestart(ctx); err != nil {
		t.Fatal(err)
	}
	waitSerial(ctx, t, serial, diskMarker, 2)

	// Virtual media.
	if err := m.InsertMedia(ctx, iso); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Media(ctx); err != nil || got != iso {
		t.Fatalf("Media after insert = %q, %v; want %q", got, err, iso)
	}
	if err := m.EjectMedia(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Media(ctx); err != nil || got != "" {
		t.Fatalf("Media after eject = %q, %v; want empty", got, err)
	}
	if err := m.SetBoot(ctx, BootCd, BootContinuous); err != nil {
		t.Fatal(err)
	}
	mustOrder(ctx, t, m, devCD)

	// The halted boot sector ignores ACPI: the machine stays on.
	if err := m.Reset(ctx, "GracefulShutdown"); !errors.Is(err, ErrStillOn) {
		t.Fatalf("GracefulShutdown = %v; want ErrStillOn", err)
	}
	mustState(ctx, t, m, PowerOn)

	pid := m.PID()
	if err := m.Reset(ctx, "ForceOff"); err != nil {
		t.Fatal(err)
	}
	mustState(ctx, t, m, PowerOff)
	if alive(pid) {
		t.Fatalf("qemu %d still running after ForceOff", pid)
	}

	// Media inserted while off is in the drive at the next power on, and
	// the Continuous override stays.
	if err := m.InsertMedia(ctx, iso); err != nil {
		t.Fatal(err)
	}
	if err := m.On(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Media(ctx); err != nil || got != iso {
		t.Fatalf("Media after power on = %q, %v; want %q", got, err, iso)
	}
	mustOrder(ctx, t, m, devCD)
	if target, enabled := m.Boot(); target != BootCd || enabled != BootContinuous {
		t.Fatalf("override = %s/%s; want Cd/Continuous", target, enabled)
	}

	pid = m.PID()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatalf("qemu %d still running after Close", pid)
	}
	if err := m.On(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("On after Close = %v; want ErrClosed", err)
	}
}

func TestArgs(t *testing.T) {
	needQemu(t) // New looks the binary up
	m, err := New(Config{
		Disk:     "/images/a,b.qcow2",
		MACs:     []string{"52:54:00:00:00:01", "52:54:00:00:00:02"},
		SMBIOS:   SMBIOS{Manufacturer: "Ferric", Serial: "S,1"},
		TFTPRoot: "/srv/tftp", BootFile: "undionly.kpxe",
		Restrict: true,
		Forwards: []Forward{{Guest: "10.0.2.100:6385", Host: "127.0.0.1:6385"}},
		CDImage:  "/images/cd.iso",
		Accel:    "tcg",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	args, err := m.args(orderFor(BootPxe), "/images/cd.iso")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-accel tcg",
		"-S",
		"-smbios type=1,manufacturer=Ferric,serial=S,,1",
		"if=none,id=disk0,format=qcow2,file=/images/a,,b.qcow2",
		"virtio-blk-pci,drive=disk0,id=disk,bootindex=2",
		"if=none,id=cd0,media=cdrom,format=raw,readonly=on,file=/images/cd.iso",
		"ide-cd,drive=cd0,id=cd,bootindex=3",
		"user,id=net0,restrict=on,tftp=/srv/tftp,bootfile=undionly.kpxe,guestfwd=tcp:10.0.2.100:6385-tcp:127.0.0.1:6385",
		"virtio-net-pci,netdev=net0,id=nic0,mac=52:54:00:00:00:01,bootindex=1",
		"virtio-net-pci,netdev=net1,id=nic1,mac=52:54:00:00:00:02",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("command line lacks %q:\n%s", want, line)
		}
	}
	if i := slices.Index(args, "virtio-net-pci,netdev=net1,id=nic1,mac=52:54:00:00:00:02"); i < 0 {
		t.Errorf("second NIC has a boot index or is missing:\n%s", line)
	}

	for _, bad := range []Config{
		{}, // no MAC
		{MACs: []string{"x"}, DiskFormat: "vmdk", Disk: "d"},
		{MACs: []string{"x"}, Forwards: []Forward{{Guest: "10.0.2.100:1"}}},
		{MACs: []string{"x"}, Name: "a\nb"},
	} {
		if m, err := New(bad); err == nil {
			_ = m.Close()
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}
