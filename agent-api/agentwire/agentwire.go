// Package agentwire holds the request and answer bodies of the agent API's
// native form (POST /v1/lookup and POST /v1/checkin): the agent API's
// handlers decode and render these types, and ferric-agent sends and reads
// them, so the two sides cannot drift apart. See docs/agent-protocol.md.
package agentwire

import "encoding/json"

// Paths of the native form.
const (
	LookupPath  = "/v1/lookup"
	CheckinPath = "/v1/checkin"
)

// Actions a checkin answer tells the agent to take next.
const (
	ActionWait     = "wait"      // nothing to do: check in again later
	ActionDeploy   = "deploy"    // write the image in args (DeployArgs) to the root device
	ActionClean    = "clean"     // clean the disks (CleanArgs)
	ActionInspect  = "inspect"   // send the inventory through lookup, then report success
	ActionPowerOff = "power_off" // nothing will need this agent: shut the machine down
	ActionReboot   = "reboot"    // restart the machine
)

// Command outcomes an agent reports at checkin.
const (
	CommandRunning = "running"
	CommandSuccess = "success"
	CommandFailed  = "failed"
)

// Agent states an agent reports at checkin.
const (
	StatusIdle  = "idle"
	StatusBusy  = "busy"
	StatusError = "error"
)

// MaskedToken is the token a lookup answers once the token of this boot
// has been handed out: the agent must not proceed, and waits for the next
// boot.
const MaskedToken = "******"

// LookupResponse answers POST /v1/lookup, whose body is an Inventory.
type LookupResponse struct {
	NodeUUID        string     `json:"node_uuid"`
	Token           string     `json:"token"` // MaskedToken after the first lookup of a boot
	CheckinInterval int        `json:"checkin_interval"`
	Node            LookupNode `json:"node"`
}

// LookupNode is what an agent may know of its node before its first
// checkin; secrets are masked.
type LookupNode struct {
	UUID           string         `json:"uuid"`
	Name           *string        `json:"name"`
	ProvisionState string         `json:"provision_state"`
	Properties     map[string]any `json:"properties"`
	InstanceInfo   map[string]any `json:"instance_info"`
}

// CheckinRequest is the body of POST /v1/checkin (Authorization: Bearer).
type CheckinRequest struct {
	AgentVersion string         `json:"agent_version"`          // at most 64 bytes
	Status       string         `json:"status"`                 // StatusIdle, StatusBusy or StatusError
	LastCommand  *CommandResult `json:"last_command,omitempty"` // omitted before the first command
}

// CommandResult is the outcome of the last command the agent was given.
type CommandResult struct {
	Name   string `json:"name"`            // the action: deploy, clean, inspect, power_off
	Status string `json:"status"`          // CommandRunning, CommandSuccess or CommandFailed
	Error  string `json:"error,omitempty"` // why it failed, at most 4096 bytes
}

// CheckinResponse answers a checkin: what to do next and when to check in
// again (seconds; agents add jitter). Token, when set, replaces the agent's
// token from now on.
type CheckinResponse struct {
	Action          string          `json:"action"`
	Args            json.RawMessage `json:"args"` // DeployArgs, CleanArgs, or {}
	CheckinInterval int             `json:"checkin_interval"`
	Token           string          `json:"token,omitempty"`
}

// DeployArgs are the arguments of the deploy action: the deploy-relevant
// members of the node's instance_info, as Ironic names them, and the
// node's root device hints.
type DeployArgs struct {
	ImageSource      string `json:"image_source,omitempty"`
	ImageURL         string `json:"image_url,omitempty"`
	ImageChecksum    string `json:"image_checksum,omitempty"` // bare MD5, algo:hex, or a URL of a checksums file
	ImageOSHashAlgo  string `json:"image_os_hash_algo,omitempty"`
	ImageOSHashValue string `json:"image_os_hash_value,omitempty"`
	ImageDiskFormat  string `json:"image_disk_format,omitempty"` // raw, qcow2...: a hint; the content decides
	ImageType        string `json:"image_type,omitempty"`        // whole-disk or partition
	Kernel           string `json:"kernel,omitempty"`
	Ramdisk          string `json:"ramdisk,omitempty"`
	RootGB           any    `json:"root_gb,omitempty"`
	SwapMB           any    `json:"swap_mb,omitempty"`
	EphemeralGB      any    `json:"ephemeral_gb,omitempty"`
	EphemeralFormat  string `json:"ephemeral_format,omitempty"`
	// Configdrive is instance_info.configdrive: a gzipped, base64 ISO9660
	// image, a URL of one, or Ironic's JSON parts (meta_data, user_data,
	// network_data, vendor_data).
	Configdrive any `json:"configdrive,omitempty"`
	// RootDevice are Ironic's root device hints (properties.root_device).
	RootDevice map[string]any `json:"root_device,omitempty"`
}

// CleanArgs are the arguments of the clean action: the steps of a manual
// clean, or the conductor's default steps for an automated one. An agent
// given none erases the disks' metadata.
type CleanArgs struct {
	CleanSteps []CleanStep `json:"clean_steps,omitempty"`
}

// CleanStep is one of Ironic's clean steps.
type CleanStep struct {
	Interface string         `json:"interface,omitempty"`
	Step      string         `json:"step"` // erase_devices_metadata, erase_devices
	Args      map[string]any `json:"args,omitempty"`
	Priority  *int           `json:"priority,omitempty"`
}

// Clean steps the agent implements (IPA's names).
const (
	StepEraseDevicesMetadata = "erase_devices_metadata" // partition tables, filesystem and RAID signatures
	StepEraseDevices         = "erase_devices"          // every byte
)
