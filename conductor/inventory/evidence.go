package inventory

import (
	"net"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// MaxEvidenceMACs bounds the MACs one inventory may present: a lookup costs
// at most this many index probes and, for discovery, this many locks.
const MaxEvidenceMACs = 64

// Evidence is what ties an inventory to a node.
type Evidence struct {
	MACs   []string // normalised, unique, in inventory order
	BMCs   []string // BMC addresses, canonical text, unique
	Serial string   // system serial number; "" when absent or a placeholder
}

// Empty reports whether there is nothing to match by.
func (e Evidence) Empty() bool { return len(e.MACs) == 0 && len(e.BMCs) == 0 && e.Serial == "" }

// EvidenceOf extracts the evidence of an inventory. Invalid MACs are
// dropped; BMC addresses IPA reports as unknown ("0.0.0.0", "::/0") and
// placeholder serial numbers are ignored.
func EvidenceOf(inv *Inventory) Evidence {
	var ev Evidence
	seen := map[string]bool{}
	addMAC := func(s string) {
		if mac, ok := NormalizeMAC(s); ok && !seen[mac] && len(ev.MACs) < MaxEvidenceMACs {
			seen[mac] = true
			ev.MACs = append(ev.MACs, mac)
		}
	}
	for _, iface := range inv.Interfaces {
		if iface.MACAddress != nil {
			addMAC(*iface.MACAddress)
		}
	}
	if inv.Boot != nil && inv.Boot.PXEInterface != nil {
		addMAC(BootifMAC(*inv.Boot.PXEInterface))
	}
	for _, a := range []*string{inv.BMCAddress, inv.BMCv6Address} {
		if addr, ok := bmcAddress(a); ok && !seen["bmc:"+addr] {
			seen["bmc:"+addr] = true
			ev.BMCs = append(ev.BMCs, addr)
		}
	}
	if inv.SystemVendor != nil && inv.SystemVendor.SerialNumber != nil {
		ev.Serial = normalizeSerial(*inv.SystemVendor.SerialNumber)
	}
	return ev
}

// BootifMAC turns pxelinux's BOOTIF form (01-aa-bb-cc-dd-ee-ff, 01 being
// the Ethernet hardware type) into a MAC; other forms pass unchanged.
func BootifMAC(s string) string {
	s = strings.TrimSpace(s)
	if len(s) == 20 && strings.HasPrefix(s, "01-") {
		return s[3:]
	}
	return s
}

// bmcAddress returns a usable BMC IP address in canonical form, or false
// for absent, unparseable, unknown (0.0.0.0, ::/0) and loopback values.
func bmcAddress(s *string) (string, bool) {
	if s == nil {
		return "", false
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(*s))
	if err != nil {
		return "", false
	}
	addr = addr.Unmap()
	if addr.IsUnspecified() || addr.IsLoopback() || addr.IsMulticast() {
		return "", false
	}
	return addr.String(), true
}

// placeholderSerials are values firmware reports when nobody set a serial
// number; two machines sharing one proves nothing.
var placeholderSerials = map[string]bool{
	"none": true, "n/a": true, "na": true, "unknown": true, "not specified": true,
	"not available": true, "not applicable": true, "to be filled by o.e.m.": true,
	"system serial number": true, "chassis serial number": true, "serial number": true,
	"default string": true, "0123456789": true, "1234567890": true, "123456789": true,
	"invalid": true, "empty": true,
}

// normalizeSerial returns a serial number fit to match by, or "".
func normalizeSerial(s string) string {
	s = strings.TrimSpace(s)
	if len(s) < 3 || len(s) > 128 || !utf8.ValidString(s) || placeholderSerials[strings.ToLower(s)] {
		return ""
	}
	if strings.Count(s, s[:1]) == len(s) { // 000000, XXXXXX
		return ""
	}
	return s
}

// NormalizeMAC returns addr as six lower-case hex pairs joined by colons, or
// false when addr is not a 48-bit MAC address. It is the rule ports are
// stored by (conductor.CreatePort uses it), so that evidence compares equal.
func NormalizeMAC(addr string) (string, bool) {
	hw, err := net.ParseMAC(strings.TrimSpace(addr))
	if err != nil || len(hw) != 6 {
		return "", false
	}
	return hw.String(), true
}
