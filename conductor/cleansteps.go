package conductor

import (
	"encoding/json"
	"math"
	"sort"
	"strings"

	"github.com/ferric-metal/ferric/shared/fault"
)

// Clean steps the deploy agent implements, on Ironic's deploy interface,
// under IPA's names. agent-api/agentwire names them for the agent; a test
// holds the two equal.
const (
	CleanStepEraseDevicesMetadata = "erase_devices_metadata" // partition tables, filesystem and RAID signatures
	CleanStepEraseDevices         = "erase_devices"          // every byte
	cleanStepInterface            = "deploy"
)

// Values of Options.CleanErase: what an automated clean erases.
const (
	CleanEraseMetadata = "metadata" // erase_devices_metadata
	CleanEraseFull     = "full"     // erase_devices
)

// automatedCleanSteps are the steps an automated clean (after provide or
// undeploy) hands the agent. Ironic's agent runs erase_devices_metadata
// (priority 99) and erase_devices (priority 10) by default, and operators
// tune them with [deploy]erase_devices_metadata_priority and
// erase_devices_priority; Ferric runs one of the two, as CleanErase says.
func (c *Conductor) automatedCleanSteps() []any {
	step := CleanStepEraseDevicesMetadata
	if c.opts.CleanErase == CleanEraseFull {
		step = CleanStepEraseDevices
	}
	return []any{map[string]any{"interface": cleanStepInterface, "step": step}}
}

// cleanStepMembers are the members a clean step may have: Ironic's
// interface, step and args, and the priority IPA's steps carry.
var cleanStepMembers = map[string]bool{"interface": true, "step": true, "args": true, "priority": true}

// checkCleanSteps validates a manual clean's steps before anything is
// written, with the answers Ironic gives: its API's schema check
// ("Invalid clean_steps: ...") and its conductor's refusal of a step no
// interface of the node offers ("node does not support this clean step:
// ..."). Only the deploy agent's steps are offered.
func checkCleanSteps(steps []any) error {
	for _, s := range steps {
		step, ok := s.(map[string]any)
		if !ok {
			return fault.New(fault.Invalid, "Invalid clean_steps: %s is not of type 'object'.", briefJSON(s))
		}
		keys := make([]string, 0, len(step))
		for k := range step {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !cleanStepMembers[k] {
				return fault.New(fault.Invalid, "Invalid clean_steps: Additional properties are not allowed ('%s' was unexpected).", k)
			}
		}
		for _, k := range []string{"interface", "step"} {
			if _, ok := step[k]; !ok {
				return fault.New(fault.Invalid, "Invalid clean_steps: '%s' is a required property.", k)
			}
		}
		iface, ok1 := step["interface"].(string)
		name, ok2 := step["step"].(string)
		if !ok1 || !ok2 || name == "" {
			return fault.New(fault.Invalid, "Invalid clean_steps: interface and step must be non-empty strings, not %s.", briefJSON(step))
		}
		if args, ok := step["args"]; ok {
			if _, isObject := args.(map[string]any); !isObject {
				return fault.New(fault.Invalid, "Invalid clean_steps: %s is not of type 'object'.", briefJSON(args))
			}
		}
		if p, ok := step["priority"]; ok {
			if f, isNumber := p.(float64); !isNumber || f < 0 || f != math.Trunc(f) || f > math.MaxInt32 {
				return fault.New(fault.Invalid, "Invalid clean_steps: priority %s is not a non-negative integer.", briefJSON(p))
			}
		}
		if iface != cleanStepInterface || (name != CleanStepEraseDevicesMetadata && name != CleanStepEraseDevices) {
			return fault.New(fault.Invalid, "node does not support this clean step: {'interface': '%s', 'step': '%s'}",
				truncate(iface, 64), truncate(name, 64))
		}
	}
	return nil
}

// briefJSON is v as JSON, cut short for an error message.
func briefJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "(not JSON)"
	}
	return truncate(string(b), 100)
}

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
