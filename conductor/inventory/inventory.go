// Package inventory parses the hardware inventories deploy agents send (in
// ironic-python-agent's shape), extracts the evidence that ties one to a
// node (MACs, BMC addresses, serial number), decides which node the
// evidence designates, and derives node properties. Everything here is pure
// and bounded: agent input is untrusted. The parser and the matcher are
// fuzzed, from the seed corpus in testdata/fuzz:
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzzminimizetime 2s ./conductor/inventory
//	go test -run '^$' -fuzz '^FuzzDecideMatch$' ./conductor/inventory
//
// (minimising an inventory with the default 60 s looks like a stall).
package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/jsonlimit"
)

// Inventory is a machine's hardware as an agent reports it, in
// ironic-python-agent's inventory shape. Fields Ferric reads are typed and
// checked; the others are kept as raw JSON so that any value IPA sends for
// them is accepted and stored unchanged.
type Inventory struct {
	Interfaces   []Interface   `json:"interfaces"`
	CPU          *CPU          `json:"cpu"`
	Memory       *Memory       `json:"memory"`
	Disks        []Disk        `json:"disks"`
	BMCAddress   *string       `json:"bmc_address"`
	BMCv6Address *string       `json:"bmc_v6address"`
	BMCMAC       *string       `json:"bmc_mac"`
	SystemVendor *SystemVendor `json:"system_vendor"`
	Boot         *Boot         `json:"boot"`
	Hostname     *string       `json:"hostname"`
}

// Interface is a network interface of an inventory.
type Interface struct {
	Name        *string         `json:"name"`
	MACAddress  *string         `json:"mac_address"`
	IPv4Address *string         `json:"ipv4_address"`
	IPv6Address *string         `json:"ipv6_address"`
	HasCarrier  json.RawMessage `json:"has_carrier"`
	LLDP        json.RawMessage `json:"lldp"`
	Vendor      json.RawMessage `json:"vendor"`
	Product     json.RawMessage `json:"product"`
	ClientID    json.RawMessage `json:"client_id"`
	BIOSDevName json.RawMessage `json:"biosdevname"`
	SpeedMbps   json.RawMessage `json:"speed_mbps"`
	PCIAddress  json.RawMessage `json:"pci_address"`
	Driver      json.RawMessage `json:"driver"`
}

// CPU is the processor section of an inventory.
type CPU struct {
	Count        *int64          `json:"count"`
	Architecture *string         `json:"architecture"`
	ModelName    json.RawMessage `json:"model_name"`
	Frequency    json.RawMessage `json:"frequency"` // a string in IPA ("3900.0000")
	Flags        json.RawMessage `json:"flags"`
	SocketCount  json.RawMessage `json:"socket_count"`
}

// Memory is the memory section of an inventory.
type Memory struct {
	Total      *int64 `json:"total"`       // bytes
	PhysicalMB *int64 `json:"physical_mb"` // MiB
}

// Disk is a block device of an inventory.
type Disk struct {
	Name               *string         `json:"name"`
	Size               *int64          `json:"size"` // bytes
	Model              json.RawMessage `json:"model"`
	Rotational         json.RawMessage `json:"rotational"`
	WWN                json.RawMessage `json:"wwn"`
	Serial             json.RawMessage `json:"serial"`
	Vendor             json.RawMessage `json:"vendor"`
	WWNWithExtension   json.RawMessage `json:"wwn_with_extension"`
	WWNVendorExtension json.RawMessage `json:"wwn_vendor_extension"`
	HCTL               json.RawMessage `json:"hctl"`
	ByPath             json.RawMessage `json:"by_path"`
	UUID               json.RawMessage `json:"uuid"`
	PartUUID           json.RawMessage `json:"partuuid"`
	LogicalSectors     json.RawMessage `json:"logical_sectors"`
	PhysicalSectors    json.RawMessage `json:"physical_sectors"`
	Tran               json.RawMessage `json:"tran"`
	ReadOnly           json.RawMessage `json:"read_only"` // Ferric's agent: skipped by cleaning
	Removable          json.RawMessage `json:"removable"`
}

// SystemVendor identifies the machine.
type SystemVendor struct {
	ProductName  *string         `json:"product_name"`
	SerialNumber *string         `json:"serial_number"`
	Manufacturer *string         `json:"manufacturer"`
	Firmware     json.RawMessage `json:"firmware"`
	SKU          json.RawMessage `json:"sku"`
	Version      json.RawMessage `json:"version"`
}

// Boot says how the agent was booted.
type Boot struct {
	CurrentBootMode *string `json:"current_boot_mode"`
	PXEInterface    *string `json:"pxe_interface"` // a MAC, or pxelinux's BOOTIF form 01-aa-bb-...
}

// Data is a parsed inventory upload: the typed inventory for
// matching, and the documents to store.
type Data struct {
	Inventory Inventory
	// Stored is the inventory re-encoded from what was received (unknown
	// members included where tolerated): what NodeInventory returns.
	Stored map[string]any
	// PluginData is IPA's other inspection data (root_disk, configuration,
	// error...), without the logs.
	PluginData map[string]any
}

// Format says which document an upload is.
type Format int

// Inventory formats.
const (
	// FormatNative is the body of POST /v1/lookup: the inventory itself,
	// sent by Ferric's own agents, so unknown members are refused.
	FormatNative Format = iota
	// FormatIPA is IPA's inspection data, {"inventory": {...}, ...}:
	// members IPA's collectors add, at any level, are tolerated.
	FormatIPA
)

// Bounds on inventories, far above any real machine and far below what
// would cost us memory or time.
const (
	maxInventoryDepth    = 32
	maxInventoryElements = 4096 // per array or object, anywhere
	maxInterfaces        = 1024
	maxDisks             = 1024
	maxInventoryString   = 4096 // bytes, for the strings Ferric reads
)

// Parse parses and checks an inventory upload. Every refusal
// is fault.Invalid with a message naming the offending member; nothing
// about the input is assumed that was not checked here.
func Parse(body []byte, format Format) (*Data, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, fault.New(fault.Invalid, "The request body is empty; a JSON inventory is required.")
	}
	if err := jsonlimit.Check(body, jsonlimit.Limits{MaxDepth: maxInventoryDepth, MaxElements: maxInventoryElements}); err != nil {
		return nil, fault.Wrap(fault.Invalid, err, "Invalid inventory: %s.", err)
	}
	var generic map[string]any
	if err := decodeJSON(body, &generic, false); err != nil {
		return nil, err
	}
	if generic == nil {
		return nil, fault.New(fault.Invalid, "Invalid inventory: expected a JSON object.")
	}
	data := &Data{Stored: generic, PluginData: map[string]any{}}
	prefix := ""
	switch format {
	case FormatNative:
		if err := decodeJSON(body, &data.Inventory, true); err != nil {
			return nil, err
		}
	case FormatIPA:
		var doc struct {
			Inventory *Inventory `json:"inventory"`
		}
		if err := decodeJSON(body, &doc, false); err != nil {
			return nil, err
		}
		stored, isObject := generic["inventory"].(map[string]any)
		if doc.Inventory == nil || !isObject {
			return nil, fault.New(fault.Invalid, "Invalid inspection data: inventory is required and must be an object.")
		}
		data.Inventory, data.Stored, prefix = *doc.Inventory, stored, "inventory."
		for k, v := range generic {
			if k != "inventory" && k != "logs" {
				data.PluginData[k] = v
			}
		}
	}
	if err := data.Inventory.check(prefix); err != nil {
		return nil, err
	}
	if format == FormatNative {
		if err := data.Inventory.checkUniqueMACs(); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// checkUniqueMACs refuses an inventory in which two interfaces have the
// same MAC address: Ferric's own agent lists each interface once. IPA's
// inspection data is not held to it, because IPA reports bond members
// with the bond's address.
func (inv *Inventory) checkUniqueMACs() error {
	seen := map[string]int{}
	for i, iface := range inv.Interfaces {
		mac, ok := NormalizeMAC(*iface.MACAddress)
		if !ok {
			continue // dropped as evidence, as IPA's placeholders are
		}
		if j, dup := seen[mac]; dup {
			return fault.New(fault.Invalid, "Invalid inventory: interfaces[%d] and interfaces[%d] have the same MAC address %s.", j, i, mac)
		}
		seen[mac] = i
	}
	return nil
}

// decodeJSON decodes one JSON document into v, numbers kept exact, with a
// client message that says what is wrong and where.
func decodeJSON(body []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	if err == nil {
		if _, trailing := dec.Token(); trailing != io.EOF {
			return fault.New(fault.Invalid, "Invalid JSON: unexpected data after the document.")
		}
		return nil
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fault.Wrap(fault.Invalid, err, "Invalid JSON: syntax error at byte %d.", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fault.Wrap(fault.Invalid, err, "Invalid JSON: the document is truncated.")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the document"
		}
		return fault.Wrap(fault.Invalid, err, "Invalid value for %s: expected %s, got JSON %s.", field, jsonTypeName(typ.Type.String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fault.Wrap(fault.Invalid, err, "Unknown inventory member %s.", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return fault.Wrap(fault.Invalid, err, "Invalid JSON.")
}

func jsonTypeName(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map"), strings.Contains(goType, "inventory."):
		return "an object"
	case goType == "string":
		return "a string"
	case goType == "int64", goType == "int":
		return "an integer"
	}
	return goType
}

// check enforces what the JSON types cannot say: required members, sizes and
// ranges.
func (inv *Inventory) check(prefix string) error {
	invalid := func(format string, args ...any) error {
		return fault.New(fault.Invalid, "Invalid inventory: "+prefix+format, args...)
	}
	if len(inv.Interfaces) == 0 {
		return invalid("interfaces is required and must list at least one interface.")
	}
	if len(inv.Interfaces) > maxInterfaces {
		return invalid("interfaces lists %d interfaces; at most %d are allowed.", len(inv.Interfaces), maxInterfaces)
	}
	if len(inv.Disks) > maxDisks {
		return invalid("disks lists %d disks; at most %d are allowed.", len(inv.Disks), maxDisks)
	}
	for i, iface := range inv.Interfaces {
		if iface.MACAddress == nil {
			return invalid("interfaces[%d].mac_address is required.", i)
		}
	}
	if inv.CPU != nil && inv.CPU.Count != nil && (*inv.CPU.Count < 0 || *inv.CPU.Count > 1<<20) {
		return invalid("cpu.count %d is out of range.", *inv.CPU.Count)
	}
	if inv.Memory != nil {
		if m := inv.Memory.PhysicalMB; m != nil && *m < 0 {
			return invalid("memory.physical_mb must not be negative.")
		}
		if m := inv.Memory.Total; m != nil && *m < 0 {
			return invalid("memory.total must not be negative.")
		}
	}
	for i, d := range inv.Disks {
		if d.Size != nil && *d.Size < 0 {
			return invalid("disks[%d].size must not be negative.", i)
		}
	}
	for name, s := range inv.readStrings() {
		if len(s) > maxInventoryString || !utf8.ValidString(s) {
			return invalid("%s is longer than %d bytes or not valid UTF-8.", name, maxInventoryString)
		}
	}
	return nil
}

// readStrings are the strings Ferric reads (and may write into a node).
func (inv *Inventory) readStrings() map[string]string {
	out := map[string]string{}
	add := func(name string, s *string) {
		if s != nil {
			out[name] = *s
		}
	}
	for i, iface := range inv.Interfaces {
		add(fmt.Sprintf("interfaces[%d].mac_address", i), iface.MACAddress)
		add(fmt.Sprintf("interfaces[%d].name", i), iface.Name)
	}
	add("bmc_address", inv.BMCAddress)
	add("bmc_v6address", inv.BMCv6Address)
	if inv.CPU != nil {
		add("cpu.architecture", inv.CPU.Architecture)
	}
	if inv.SystemVendor != nil {
		add("system_vendor.serial_number", inv.SystemVendor.SerialNumber)
	}
	if inv.Boot != nil {
		add("boot.pxe_interface", inv.Boot.PXEInterface)
	}
	return out
}
