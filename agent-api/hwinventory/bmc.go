package hwinventory

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ipmiChannels are the channels IPA asks for a LAN address: of 0-15, only
// 1-11 can be assigned to a medium.
const firstIPMIChannel, lastIPMIChannel = 1, 11

// ipmiDevices are the device nodes ipmitool's open interface tries.
var ipmiDevices = []string{"dev/ipmi0", "dev/ipmi/0", "dev/ipmidev/0"}

type bmcAddresses struct{ v4, v6, mac string }

// bmc asks the BMC for its addresses with ipmitool, as IPA's
// get_bmc_address, get_bmc_v6address and get_bmc_mac do: the first channel
// with a configured address wins. Having no BMC (no IPMI device, no
// ipmitool, a BMC that does not answer) is normal and leaves them empty.
func (c *collector) bmc(ctx context.Context) bmcAddresses {
	var out bmcAddresses
	if !c.anyIPMIDevice() {
		c.log.Info("no IPMI device: BMC addresses not collected")
		return out
	}
	tool := c.opts.IPMITool
	run := c.opts.Run
	if run == nil {
		if tool == "" {
			found, err := exec.LookPath("ipmitool")
			if err != nil {
				c.log.Info("ipmitool not found: BMC addresses not collected", "error", err)
				return out
			}
			tool = found
		}
		run = execRunner
	}
	if tool == "" {
		tool = "ipmitool"
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.BMCTimeout)
	defer cancel()
	ipmi := &ipmiSession{ctx: ctx, tool: tool, run: run, timeout: c.opts.CommandTimeout, c: c}

	macs := map[int]string{}
	for ch := firstIPMIChannel; ch <= lastIPMIChannel && !ipmi.stopped; ch++ {
		text, ok := ipmi.call("lan", "print", strconv.Itoa(ch))
		if !ok {
			continue
		}
		ip, mac := parseLANPrint(text)
		macs[ch] = mac
		if ip != "" && ip != "0.0.0.0" {
			out.v4, out.mac = ip, mac
			break
		}
	}
	for ch := firstIPMIChannel; ch <= lastIPMIChannel && !ipmi.stopped; ch++ {
		if addr := ipmi.v6Address(ch); addr != "" {
			out.v6 = addr
			if out.mac == "" {
				if _, seen := macs[ch]; !seen {
					if text, ok := ipmi.call("lan", "print", strconv.Itoa(ch)); ok {
						_, macs[ch] = parseLANPrint(text)
					}
				}
				out.mac = macs[ch]
			}
			break
		}
	}
	if ipmi.stopped {
		c.log.Info("the BMC did not answer: BMC addresses incomplete", "error", ipmi.err)
	}
	return out
}

func (c *collector) anyIPMIDevice() bool {
	for _, dev := range ipmiDevices {
		if c.t.exists(dev) {
			return true
		}
	}
	return false
}

// ipmiSession runs ipmitool commands under one deadline, and stops at the
// first failure that is not the BMC refusing a channel: ipmitool missing,
// or the deadline passed.
type ipmiSession struct {
	ctx     context.Context
	tool    string
	run     CommandRunner
	timeout time.Duration
	c       *collector
	stopped bool
	err     error
}

func (s *ipmiSession) call(args ...string) (string, bool) {
	if s.stopped {
		return "", false
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	out, err := s.run(ctx, s.tool, args...)
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) ||
			errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || s.ctx.Err() != nil {
			s.stopped, s.err = true, err
		}
		s.c.log.Debug("ipmitool failed", "args", strings.Join(args, " "), "error", err)
		return "", false
	}
	return string(out), true
}

// parseLANPrint reads "IP Address : 10.0.0.5" and "MAC Address : ..." of
// `ipmitool lan print`; an address that does not parse is "".
func parseLANPrint(text string) (ip, mac string) {
	for _, line := range strings.Split(text, "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(key) {
		case "IP Address":
			if addr, err := netip.ParseAddr(value); err == nil && addr.Is4() {
				ip = addr.String()
			}
		case "MAC Address":
			if hw, err := net.ParseMAC(value); err == nil && len(hw) == 6 && value != "00:00:00:00:00:00" {
				mac = hw.String()
			}
		}
	}
	return ip, mac
}

// v6Address is the channel's IPv6 address when IPv6 is enabled on it: the
// first active DHCPv6 or SLAAC address, else the first enabled and active
// static one.
func (s *ipmiSession) v6Address(ch int) string {
	channel := strconv.Itoa(ch)
	text, ok := s.call("lan6", "print", channel, "enables")
	if !ok {
		return ""
	}
	mode := ""
	for _, line := range strings.Split(text, "\n") {
		if key, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "IPv6/IPv4 Addressing Enables" {
			if fields := strings.Fields(value); len(fields) > 0 {
				mode = fields[len(fields)-1]
			}
		}
	}
	if mode != "ipv6" && mode != "both" {
		return ""
	}
	for _, kind := range []string{"dynamic", "static"} {
		if text, ok := s.call("lan6", "print", channel, kind+"_addr"); ok {
			if addr := pickV6Address(text, kind == "dynamic"); addr != "" {
				return addr
			}
		}
	}
	return ""
}

// nullV6Address is how ipmitool shows an unset address: ::, ::/0, ::/64.
var nullV6Address = regexp.MustCompile(`^::(/\d{1,3})*$`)

// pickV6Address reads `ipmitool lan6 print N dynamic_addr|static_addr`:
//
//	IPv6 Dynamic Address 0:
//	    Source/Type:    SLAAC
//	    Address:        2001:db8::5/64
//	    Status:         active
func pickV6Address(text string, dynamic bool) string {
	type entry struct{ address, status, source, enabled string }
	var entries []*entry
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "IPv6 ") && strings.HasSuffix(strings.TrimSpace(line), ":") {
			entries = append(entries, &entry{})
			continue
		}
		key, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || len(entries) == 0 {
			continue
		}
		e, value := entries[len(entries)-1], strings.TrimSpace(value)
		switch key {
		case "Address":
			e.address = value
		case "Status":
			e.status = value
		case "Source/Type":
			e.source = value
		case "Enabled":
			e.enabled = value
		}
	}
	for _, e := range entries {
		enabled := e.enabled == "yes" || e.enabled == "true"
		if dynamic {
			enabled = e.source == "DHCPv6" || e.source == "SLAAC"
		}
		if e.status != "active" || !enabled || nullV6Address.MatchString(e.address) {
			continue
		}
		if prefix, err := netip.ParsePrefix(e.address); err == nil {
			return prefix.Addr().String()
		}
		if addr, err := netip.ParseAddr(e.address); err == nil {
			return addr.String()
		}
	}
	return ""
}
