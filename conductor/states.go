package conductor

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
