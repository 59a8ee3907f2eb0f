package conductor

import (
	"net"
	"strings"
)

// NormalizeMAC returns addr as six lower-case hex pairs joined by colons, or
// false when addr is not a 48-bit MAC address. Colon, hyphen and Cisco dot
// notations are accepted.
func NormalizeMAC(addr string) (string, bool) {
	hw, err := net.ParseMAC(strings.TrimSpace(addr))
	if err != nil || len(hw) != 6 {
		return "", false
	}
	return hw.String(), true
}
