package agents

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/inventory"
	"github.com/ferric-metal/ferric/conductor/store"
)

// DiscoveryOptions configure the enrollment of machines no node matches.
type DiscoveryOptions struct {
	// Enabled turns discovery on. Off, an unmatched inventory is a 404.
	Enabled bool
	// Rules choose the new node's driver and driver_info; the first rule
	// whose condition holds applies. Default DefaultDiscoveryRules.
	Rules []DiscoveryRule
	// QuotaPerSource is how many nodes one source address may cause to be
	// enrolled within QuotaWindow. Default 2 per 24 h.
	QuotaPerSource int
	QuotaWindow    time.Duration
	// BMCNetworks are the networks in which a BMC address an agent reports
	// may become the new node's (driver_info, by the rules' {bmc_address}).
	// An address outside them is kept in the inventory only: the agent is
	// untrusted, and the address it names is where the conductor would
	// connect. Empty: none, so the bmc_address condition never holds.
	BMCNetworks []netip.Prefix
}

// DefaultDiscoveryRules enroll a machine whose BMC address the agent found
// (inside DiscoveryOptions.BMCNetworks) with the ipmi driver at that address
// (credentials are the operator's to add), and any other with the fake
// driver, which touches no hardware.
const DefaultDiscoveryRules = "bmc_address -> ipmi ipmi_address={bmc_address}; * -> fake"

func (o DiscoveryOptions) withDefaults() (DiscoveryOptions, error) {
	if o.Rules == nil {
		rules, err := ParseDiscoveryRules(DefaultDiscoveryRules)
		if err != nil {
			return o, err
		}
		o.Rules = rules
	}
	if o.QuotaPerSource <= 0 {
		o.QuotaPerSource = 2
	}
	if o.QuotaWindow <= 0 {
		o.QuotaWindow = 24 * time.Hour
	}
	return o, nil
}

// DiscoveryRule is one rule: "condition -> driver key=template ...".
// Conditions: "*" (always), "bmc_address" (the agent reported a usable BMC
// address). Templates may use {bmc_address} (the IPv4 BMC address, else
// the IPv6 one) and {bmc_host} (the same, IPv6 in brackets, for URLs).
type DiscoveryRule struct {
	Condition  string
	Driver     string
	DriverInfo map[string]string // driver_info key -> template
}

var (
	ruleNamePattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	rulePlaceholder     = regexp.MustCompile(`\{[^}]*\}`)
	rulePlaceholders    = map[string]bool{"{bmc_address}": true, "{bmc_host}": true}
	discoveryConditions = map[string]bool{"*": true, "bmc_address": true}
)

// ParseDiscoveryRules parses rules separated by semicolons, e.g.
// "bmc_address -> redfish redfish_address=https://{bmc_host}; * -> fake".
func ParseDiscoveryRules(s string) ([]DiscoveryRule, error) {
	rules := []DiscoveryRule{}
	for i, text := range strings.Split(s, ";") {
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		cond, action, ok := strings.Cut(text, "->")
		cond = strings.TrimSpace(cond)
		fields := strings.Fields(action)
		if !ok || len(fields) == 0 {
			return nil, fmt.Errorf("discovery rule %d %q: want \"condition -> driver [key=template ...]\"", i+1, text)
		}
		if !discoveryConditions[cond] {
			return nil, fmt.Errorf("discovery rule %d: unknown condition %q (use * or bmc_address)", i+1, cond)
		}
		r := DiscoveryRule{Condition: cond, Driver: fields[0], DriverInfo: map[string]string{}}
		if !ruleNamePattern.MatchString(r.Driver) {
			return nil, fmt.Errorf("discovery rule %d: %q is not a driver name", i+1, r.Driver)
		}
		for _, kv := range fields[1:] {
			key, tmpl, ok := strings.Cut(kv, "=")
			if !ok || !ruleNamePattern.MatchString(key) || tmpl == "" {
				return nil, fmt.Errorf("discovery rule %d: %q is not key=template", i+1, kv)
			}
			for _, ph := range rulePlaceholder.FindAllString(tmpl, -1) {
				if !rulePlaceholders[ph] {
					return nil, fmt.Errorf("discovery rule %d: unknown placeholder %s (use {bmc_address} or {bmc_host})", i+1, ph)
				}
			}
			if cond != "bmc_address" && strings.Contains(tmpl, "{bmc_") {
				return nil, fmt.Errorf("discovery rule %d: %s needs the condition bmc_address", i+1, rulePlaceholder.FindString(tmpl))
			}
			r.DriverInfo[key] = tmpl
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil, errors.New("no discovery rule")
	}
	return rules, nil
}

// ruleFor returns the first rule that applies to the evidence.
func ruleFor(rules []DiscoveryRule, ev inventory.Evidence) (DiscoveryRule, bool) {
	for _, r := range rules {
		if r.Condition == "*" || (r.Condition == "bmc_address" && len(ev.BMCs) > 0) {
			return r, true
		}
	}
	return DiscoveryRule{}, false
}

// driverInfo expands the rule's templates.
func (r DiscoveryRule) driverInfo(ev inventory.Evidence) map[string]any {
	addr, host := "", ""
	if len(ev.BMCs) > 0 {
		addr, host = ev.BMCs[0], ev.BMCs[0]
		if strings.Contains(addr, ":") {
			host = "[" + addr + "]"
		}
	}
	info := map[string]any{}
	for k, tmpl := range r.DriverInfo {
		info[k] = strings.NewReplacer("{bmc_address}", addr, "{bmc_host}", host).Replace(tmpl)
	}
	return info
}

// splitBMCs returns ev with only the BMC addresses inside networks, and the
// addresses left out.
func splitBMCs(ev inventory.Evidence, networks []netip.Prefix) (usable inventory.Evidence, outside []string) {
	usable = ev
	usable.BMCs = nil
	for _, b := range ev.BMCs {
		addr, err := netip.ParseAddr(b)
		if err == nil && slices.ContainsFunc(networks, func(p netip.Prefix) bool { return p.Contains(addr.Unmap()) }) {
			usable.BMCs = append(usable.BMCs, b)
		} else {
			outside = append(outside, b)
		}
	}
	return usable, outside
}

// discoveryOutcome is what a discovery attempt found.
type discoveryOutcome struct {
	node    *store.AgentNode // the node enrolled, or the one found meanwhile
	created bool
	match   inventory.Match // when the evidence matched meanwhile: the verdict
}

// discover enrolls the machine an unmatched inventory describes, exactly
// once however many lookups it sends at the same instant: it locks every
// piece of evidence (and the source address, for its quota), matches again
// under the locks, and creates the node, its ports and its inventory in the
// same transaction. A concurrent lookup of the same machine waits on a
// shared lock and then finds the node this one created.
func (a *Agents) discover(ctx context.Context, data *inventory.Data, ev inventory.Evidence, from netip.Addr) (*discoveryOutcome, error) {
	source, quotaKey := sourceText(from), discoveryQuotaKey(from)
	out := &discoveryOutcome{}
	err := store.Transact(ctx, a.db, func(tx *sqlx.Tx) error {
		if err := store.LockDiscoveryKeys(ctx, tx, discoveryLockKeys(ev, quotaKey)); err != nil {
			return err
		}
		hits, nodes, err := a.findEvidence(ctx, tx, ev)
		if err != nil {
			return err
		}
		if out.match = inventory.Decide(hits); out.match.Verdict != inventory.NoMatch {
			out.node = nodes[out.match.NodeID] // enrolled meanwhile (or ambiguous now: the caller decides)
			return nil
		}
		opts := a.opts.Discovery
		n, err := store.CountDiscoveries(ctx, tx, quotaKey, opts.QuotaWindow)
		if err != nil {
			return err
		}
		if n >= opts.QuotaPerSource {
			a.log.Warn("discovery refused: the source's quota is used up", "source", source, "quota_key", quotaKey,
				"discovered", n, "quota", opts.QuotaPerSource, "window", opts.QuotaWindow)
			return errLookupFailed
		}
		usable, outside := splitBMCs(ev, opts.BMCNetworks)
		rule, ok := ruleFor(opts.Rules, usable)
		if !ok {
			a.log.Warn("discovery refused: no discovery rule applies", "source", source, "macs", ev.MACs)
			return errLookupFailed
		}
		node := &store.Node{
			Driver:         rule.Driver,
			DriverInfo:     rule.driverInfo(usable),
			Properties:     inventory.Properties(data),
			ProvisionState: conductor.StateEnroll,
		}
		if err := store.CreateNode(ctx, tx, node); err != nil {
			return err
		}
		pxe := ""
		if b := data.Inventory.Boot; b != nil && b.PXEInterface != nil {
			pxe, _ = inventory.NormalizeMAC(inventory.BootifMAC(*b.PXEInterface))
		}
		for _, mac := range ev.MACs {
			port := &store.Port{Address: mac, NodeID: node.ID, PXEEnabled: pxe == "" || mac == pxe}
			if err := store.CreatePort(ctx, tx, port); err != nil {
				return err // a MAC taken outside discovery meanwhile: the caller retries
			}
		}
		if err := store.RecordDiscovery(ctx, tx, node.UUID, quotaKey, opts.QuotaWindow); err != nil {
			return err
		}
		if out.node, err = store.GetAgentNodeForUpdate(ctx, tx, node.ID); err != nil {
			return err
		}
		if _, err := a.saveInventory(ctx, tx, out.node, data, source); err != nil {
			return err // a new node has no inventory yet: it is saved
		}
		a.c.AddHistory(ctx, tx, node.ID, "INFO", "discovery", fmt.Sprintf(
			"Enrolled by discovery: the agent at %s sent an inventory no node matched (MACs %s; driver %s by rule %q).",
			source, strings.Join(ev.MACs, ", "), rule.Driver, rule.Condition), "")
		if len(outside) > 0 {
			a.c.AddHistory(ctx, tx, node.ID, "WARNING", "discovery", fmt.Sprintf(
				"BMC address %s reported by the agent is outside the discovery BMC networks: kept in the inventory, not used in driver_info.",
				strings.Join(outside, ", ")), "")
		}
		out.created = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out.created {
		a.log.Info("discovery enrolled a node", "node", out.node.UUID, "source", source, "macs", ev.MACs)
	}
	return out, nil
}

// discoveryQuotaKey is what the discovery quota counts by: the address, or
// for IPv6 its /64, all of which one host can use.
func discoveryQuotaKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return sourceText(a)
}

// discoveryLockKeys are the advisory lock keys of a discovery: one per piece
// of evidence and one for the source address, sorted.
func discoveryLockKeys(ev inventory.Evidence, source string) []int64 {
	names := []string{"source " + source}
	for _, m := range ev.MACs {
		names = append(names, inventory.KindMAC+" "+m)
	}
	for _, b := range ev.BMCs {
		names = append(names, inventory.KindBMC+" "+b)
	}
	if ev.Serial != "" {
		names = append(names, inventory.KindSerial+" "+ev.Serial)
	}
	keys := make([]int64, 0, len(names))
	for _, n := range names {
		h := fnv.New64a()
		h.Write([]byte("ferric discovery " + n))
		keys = append(keys, int64(h.Sum64()))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// isRetryableDiscovery reports whether a discovery failed on a constraint a
// concurrent writer outside discovery (an operator adding a port) tripped:
// matching again will find what they wrote.
func isRetryableDiscovery(err error) bool {
	var ce *store.ConflictError
	return errors.As(err, &ce)
}
