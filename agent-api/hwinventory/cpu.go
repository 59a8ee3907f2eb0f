package hwinventory

import (
	"fmt"
	"path"
	"runtime"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
)

// cpu reads /proc/cpuinfo: one stanza per logical CPU. IPA asks lscpu,
// which reads the same file and these sysfs attributes.
func (c *collector) cpu() (*agentwire.CPU, error) {
	data, err := c.t.read("proc/cpuinfo", maxCPUInfoBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the CPUs: %w", err)
	}
	stanzas := parseCPUInfo(string(data))
	if len(stanzas) == 0 {
		return nil, fmt.Errorf("reading the CPUs: proc/cpuinfo lists no processor")
	}
	first := stanzas[0]
	cpu := &agentwire.CPU{
		Count:        len(stanzas),
		Architecture: c.architecture(),
		ModelName:    first["model name"],
		Flags:        strings.Fields(first["flags"]),
		SocketCount:  c.sockets(stanzas),
	}
	if cpu.ModelName == "" {
		cpu.ModelName = armCoreName(first["cpu implementer"], first["cpu part"])
	}
	if len(cpu.Flags) == 0 { // arm64 calls them features
		cpu.Flags = strings.Fields(first["features"])
	}
	// The highest frequency, as lscpu's "CPU max MHz" that IPA prefers;
	// else the current one.
	if khz, err := strconv.ParseInt(c.t.attr("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"), 10, 64); err == nil && khz > 0 {
		cpu.Frequency = strconv.FormatFloat(float64(khz)/1000, 'f', 4, 64)
	} else {
		cpu.Frequency = first["cpu mhz"]
	}
	return cpu, nil
}

// parseCPUInfo returns the stanzas of /proc/cpuinfo that describe a
// processor, keys in lower case.
func parseCPUInfo(text string) []map[string]string {
	var stanzas []map[string]string
	current := map[string]string{}
	flush := func() {
		if _, ok := current["processor"]; ok {
			stanzas = append(stanzas, current)
		}
		current = map[string]string{}
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.ToLower(strings.TrimSpace(key))
		if _, dup := current[key]; !dup {
			current[key] = strings.TrimSpace(value)
		}
	}
	flush()
	return stanzas
}

// sockets counts the physical packages: cpuinfo's "physical id" on x86,
// the topology in sysfs elsewhere; 0 when neither says.
func (c *collector) sockets(stanzas []map[string]string) int {
	ids := map[string]bool{}
	for _, s := range stanzas {
		if id, ok := s["physical id"]; ok {
			ids[id] = true
		}
	}
	if len(ids) > 0 {
		return len(ids)
	}
	for _, s := range stanzas {
		dir := path.Join("sys/devices/system/cpu", "cpu"+s["processor"])
		if id := c.t.attr(path.Join(dir, "topology/physical_package_id")); id != "" && !strings.HasPrefix(id, "-") {
			ids[id] = true
		}
	}
	return len(ids)
}

// architecture is the kernel's machine name (uname -m), which IPA sends;
// older kernels have no file for it, and then the agent's own architecture
// says it.
func (c *collector) architecture() string {
	if arch := c.t.attr("proc/sys/kernel/arch"); arch != "" {
		return arch
	}
	return linuxArch(runtime.GOARCH)
}

// linuxArch maps a GOARCH to the kernel's name for it.
func linuxArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	case "loong64":
		return "loongarch64"
	}
	return goarch // ppc64le, riscv64, s390x: the same names
}

// armCoreName names an Arm core from its MIDR fields as lscpu does
// ("Neoverse-N1"); arm64's cpuinfo has no model name. Only server cores are
// listed: "" for the others.
func armCoreName(implementer, part string) string {
	imp, err1 := strconv.ParseUint(strings.TrimPrefix(implementer, "0x"), 16, 16)
	num, err2 := strconv.ParseUint(strings.TrimPrefix(part, "0x"), 16, 16)
	if err1 != nil || err2 != nil {
		return ""
	}
	return armCores[[2]uint64{imp, num}]
}

var armCores = map[[2]uint64]string{
	{0x41, 0xd03}: "Cortex-A53",
	{0x41, 0xd07}: "Cortex-A57",
	{0x41, 0xd08}: "Cortex-A72",
	{0x41, 0xd0b}: "Cortex-A76",
	{0x41, 0xd0c}: "Neoverse-N1",
	{0x41, 0xd40}: "Neoverse-V1",
	{0x41, 0xd49}: "Neoverse-N2",
	{0x41, 0xd4f}: "Neoverse-V2",
	{0xc0, 0xac3}: "Ampere-1",
	{0xc0, 0xac4}: "Ampere-1a",
}

// memory reads the total the kernel manages (/proc/meminfo, what IPA's
// psutil reports) and the installed size: the online memory blocks, as
// lsmem counts them. IPA asks lshw for the DIMMs instead; without memory
// blocks, the total rounded up to a MiB stands in.
func (c *collector) memory() (*agentwire.Memory, error) {
	data, err := c.t.read("proc/meminfo", maxAttrBytes)
	if err != nil {
		return nil, fmt.Errorf("reading the memory size: %w", err)
	}
	var totalKiB int64 = -1
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				totalKiB, _ = strconv.ParseInt(fields[0], 10, 64)
			}
		}
	}
	if totalKiB <= 0 || totalKiB > 1<<50 {
		return nil, fmt.Errorf("reading the memory size: proc/meminfo has no MemTotal in kB")
	}
	mem := &agentwire.Memory{Total: totalKiB << 10, PhysicalMB: c.onlineMemoryMiB()}
	if mem.PhysicalMB == 0 {
		mem.PhysicalMB = (mem.Total + 1<<20 - 1) >> 20
	}
	return mem, nil
}

// onlineMemoryMiB is the size of the online memory blocks, 0 when sysfs
// has none.
func (c *collector) onlineMemoryMiB() int64 {
	const dir = "sys/devices/system/memory"
	blockSize, err := strconv.ParseInt(c.t.attr(path.Join(dir, "block_size_bytes")), 16, 64)
	if err != nil || blockSize <= 0 {
		return 0
	}
	names, err := c.t.list(dir)
	if err != nil {
		return 0
	}
	var online int64
	for _, name := range names {
		if rest, ok := strings.CutPrefix(name, "memory"); ok && isDigits(rest) && c.t.attr(path.Join(dir, name, "online")) == "1" {
			online++
		}
	}
	return online * (blockSize >> 10) >> 10
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
