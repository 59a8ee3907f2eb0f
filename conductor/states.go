package conductor

import "fmt"

// Provision states, spelled as Ironic spells them on the wire.
const (
	StateEnroll        = "enroll"
	StateVerifying     = "verifying"
	StateManageable    = "manageable"
	StateInspecting    = "inspecting"
	StateInspectWait   = "inspect wait"
	StateInspectFailed = "inspect failed"
	StateAvailable     = "available"
	StateDeploying     = "deploying"
	StateWaitCallback  = "wait call-back"
	StateDeployFailed  = "deploy failed"
	StateActive        = "active"
	StateDeleting      = "deleting"
	StateCleaning      = "cleaning"
	StateCleanWait     = "clean wait"
	StateCleanFailed   = "clean failed"
	StateError         = "error"
	StateAdoptFailed   = "adopt failed"
)

// Event moves a node between provision states. The first group are asked
// for by operators (Ironic's verbs); the second are raised by the conductor
// as work progresses.
type Event string

// Events.
const (
	EventManage  Event = "manage"
	EventProvide Event = "provide"
	EventInspect Event = "inspect"
	EventDeploy  Event = "deploy"
	EventRebuild Event = "rebuild"
	EventDelete  Event = "delete"
	EventClean   Event = "clean"
	EventAbort   Event = "abort"

	EventDone   Event = "done"   // the work of the state finished
	EventWait   Event = "wait"   // the work now waits for the agent
	EventResume Event = "resume" // the agent called back
	EventFail   Event = "fail"   // the work failed
)

// toTarget as a destination means "the node's target state": cleaning ends
// in available after provide but in manageable after a manual clean.
const toTarget = "(target)"

// transition is one row of the state machine. Target, when set, becomes the
// node's target_provision_state; otherwise the target is kept, and cleared
// when the node lands in a stable state.
type transition struct {
	From   string
	Event  Event
	To     string
	Target string
}

// transitions is the whole provision state machine (Ironic's, without
// rescue, service, adoption and holds).
var transitions = []transition{
	{StateEnroll, EventManage, StateVerifying, StateManageable},
	{StateVerifying, EventDone, StateManageable, ""},
	{StateVerifying, EventFail, StateEnroll, ""},

	{StateManageable, EventProvide, StateCleaning, StateAvailable},
	{StateManageable, EventClean, StateCleaning, StateManageable},
	{StateManageable, EventInspect, StateInspecting, StateManageable},

	{StateInspecting, EventDone, StateManageable, ""},
	{StateInspecting, EventWait, StateInspectWait, ""},
	{StateInspecting, EventFail, StateInspectFailed, ""},
	{StateInspectWait, EventResume, StateInspecting, ""},
	{StateInspectWait, EventDone, StateManageable, ""},
	{StateInspectWait, EventFail, StateInspectFailed, ""},
	{StateInspectWait, EventAbort, StateInspectFailed, ""},
	{StateInspectFailed, EventManage, StateManageable, ""},
	{StateInspectFailed, EventInspect, StateInspecting, StateManageable},

	{StateAvailable, EventManage, StateManageable, ""},
	{StateAvailable, EventDeploy, StateDeploying, StateActive},

	{StateDeploying, EventDone, StateActive, ""},
	{StateDeploying, EventWait, StateWaitCallback, ""},
	{StateDeploying, EventFail, StateDeployFailed, ""},
	{StateWaitCallback, EventResume, StateDeploying, ""},
	{StateWaitCallback, EventFail, StateDeployFailed, ""},
	// No abort in wait call-back: Ironic added it with API 1.110, past the
	// 1.81 Ferric speaks; undeploy (delete) leaves it instead.
	{StateWaitCallback, EventDelete, StateDeleting, StateAvailable},
	{StateDeployFailed, EventDeploy, StateDeploying, StateActive},
	{StateDeployFailed, EventRebuild, StateDeploying, StateActive},
	{StateDeployFailed, EventDelete, StateDeleting, StateAvailable},

	{StateActive, EventRebuild, StateDeploying, StateActive},
	{StateActive, EventDelete, StateDeleting, StateAvailable},
	{StateDeleting, EventClean, StateCleaning, ""},
	{StateDeleting, EventFail, StateError, ""},
	{StateError, EventRebuild, StateDeploying, StateActive},
	{StateError, EventDelete, StateDeleting, StateAvailable},

	{StateCleaning, EventDone, toTarget, ""},
	{StateCleaning, EventWait, StateCleanWait, ""},
	{StateCleaning, EventFail, StateCleanFailed, ""},
	{StateCleanWait, EventResume, StateCleaning, ""},
	{StateCleanWait, EventFail, StateCleanFailed, ""},
	{StateCleanWait, EventAbort, StateCleanFailed, ""},
	{StateCleanFailed, EventManage, StateManageable, ""},
}

// stableStates are left only when an operator asks. Failure states also
// wait for an operator but keep their target, as in Ironic.
var stableStates = map[string]bool{
	StateEnroll: true, StateManageable: true, StateAvailable: true, StateActive: true, StateError: true,
}

// AllStates lists every provision state, for validating filters.
var AllStates = func() map[string]bool {
	m := map[string]bool{StateAdoptFailed: true}
	for _, t := range transitions {
		m[t.From] = true
		if t.To != toTarget {
			m[t.To] = true
		}
	}
	return m
}()

// nextState returns where event takes a node in state from whose target is
// target, and its new target. ok is false when the event is not allowed.
func nextState(from, target string, event Event) (to, newTarget string, ok bool) {
	for _, t := range transitions {
		if t.From != from || t.Event != event {
			continue
		}
		to, newTarget = t.To, target
		if to == toTarget {
			to = target
		}
		if t.Target != "" {
			newTarget = t.Target
		}
		if stableStates[to] {
			newTarget = ""
		}
		return to, newTarget, to != ""
	}
	return "", "", false
}

// invalidTransition is the operator-facing error for an event not allowed.
func invalidTransition(node, from string, event Event) error {
	return faultInvalidState(fmt.Sprintf("The requested action %q can not be performed on node %q while it is in state %q.", event, node, from))
}

// failedStates maps a state whose work can be interrupted (a dead conductor,
// a callback that never came) to where the node goes then.
var failedStates = map[string]string{
	StateVerifying:    StateEnroll,
	StateInspecting:   StateInspectFailed,
	StateInspectWait:  StateInspectFailed,
	StateCleaning:     StateCleanFailed,
	StateCleanWait:    StateCleanFailed,
	StateDeploying:    StateDeployFailed,
	StateWaitCallback: StateDeployFailed,
	StateDeleting:     StateError,
}

// waitStates are the states that wait for an agent to call back.
var waitStates = []string{StateWaitCallback, StateCleanWait, StateInspectWait}

// lookupStates are the states in which a node expects an agent.
var lookupStates = map[string]bool{
	StateDeploying: true, StateWaitCallback: true,
	StateCleaning: true, StateCleanWait: true,
	StateInspecting: true, StateInspectWait: true,
}

// fastTrackLookupStates are added to lookupStates when fast track is on.
var fastTrackLookupStates = map[string]bool{
	StateEnroll: true, StateManageable: true, StateAvailable: true,
}

// deletableStates are the states a node may be deleted from (any state
// when in maintenance), as Ironic with allow_deleting_available_nodes.
var deletableStates = map[string]bool{
	StateEnroll: true, StateManageable: true, StateAvailable: true, StateAdoptFailed: true,
}
