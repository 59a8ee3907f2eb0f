package conductor

import (
	"fmt"
	"sort"
	"testing"
)

var allEvents = []Event{
	EventManage, EventProvide, EventInspect, EventDeploy, EventRebuild, EventDelete, EventClean, EventAbort,
	EventDone, EventWait, EventResume, EventFail,
}

// TestEveryTransition checks every (state, event) pair: the allowed ones
// land where Ironic's state machine lands, with the right target; every
// other pair is refused.
func TestEveryTransition(t *testing.T) {
	// want: "from|event|target-before" -> "to|target-after". Target-before
	// matters only where the destination depends on it.
	want := map[string]string{
		"enroll|manage|":                    "verifying|manageable",
		"verifying|done|manageable":         "manageable|",
		"verifying|fail|manageable":         "enroll|",
		"manageable|provide|":               "cleaning|available",
		"manageable|clean|":                 "cleaning|manageable",
		"manageable|inspect|":               "inspecting|manageable",
		"inspecting|done|manageable":        "manageable|",
		"inspecting|wait|manageable":        "inspect wait|manageable",
		"inspecting|fail|manageable":        "inspect failed|manageable",
		"inspect wait|resume|manageable":    "inspecting|manageable",
		"inspect wait|done|manageable":      "manageable|",
		"inspect wait|fail|manageable":      "inspect failed|manageable",
		"inspect wait|abort|manageable":     "inspect failed|manageable",
		"inspect failed|manage|manageable":  "manageable|",
		"inspect failed|inspect|manageable": "inspecting|manageable",
		"available|manage|":                 "manageable|",
		"available|deploy|":                 "deploying|active",
		"deploying|done|active":             "active|",
		"deploying|wait|active":             "wait call-back|active",
		"deploying|fail|active":             "deploy failed|active",
		"wait call-back|resume|active":      "deploying|active",
		"wait call-back|fail|active":        "deploy failed|active",
		"wait call-back|delete|active":      "deleting|available",
		"deploy failed|deploy|active":       "deploying|active",
		"deploy failed|rebuild|active":      "deploying|active",
		"deploy failed|delete|active":       "deleting|available",
		"active|rebuild|":                   "deploying|active",
		"active|delete|":                    "deleting|available",
		"deleting|clean|available":          "cleaning|available",
		"deleting|fail|available":           "error|",
		"error|rebuild|":                    "deploying|active",
		"error|delete|":                     "deleting|available",
		"cleaning|done|available":           "available|",
		"cleaning|done|manageable":          "manageable|",
		"cleaning|wait|available":           "clean wait|available",
		"cleaning|fail|available":           "clean failed|available",
		"clean wait|resume|available":       "cleaning|available",
		"clean wait|fail|available":         "clean failed|available",
		"clean wait|abort|available":        "clean failed|available",
		"clean failed|manage|available":     "manageable|",
	}
	// Targets a node can carry into each state, to probe every pair.
	targets := []string{"", StateManageable, StateAvailable, StateActive}
	var states []string
	for s := range AllStates {
		states = append(states, s)
	}
	sort.Strings(states)
	seen := map[string]bool{}
	for _, from := range states {
		for _, ev := range allEvents {
			for _, target := range targets {
				key := fmt.Sprintf("%s|%s|%s", from, ev, target)
				to, newTarget, ok := nextState(from, target, ev)
				expect, listed := want[key]
				if !listed {
					// Pairs listed with some other target: the event is
					// allowed whatever the target; only check it is.
					allowedElsewhere := false
					for _, t2 := range targets {
						if _, l := want[fmt.Sprintf("%s|%s|%s", from, ev, t2)]; l {
							allowedElsewhere = true
						}
					}
					if !allowedElsewhere && ok {
						t.Errorf("%s on %s (target %q) allowed -> %s; want refused", ev, from, target, to)
					}
					if allowedElsewhere && !ok && ev != EventDone {
						t.Errorf("%s on %s (target %q) refused", ev, from, target)
					}
					continue
				}
				seen[key] = true
				if got := to + "|" + newTarget; !ok || got != expect {
					t.Errorf("%s on %s (target %q) = %q, %v; want %q", ev, from, target, got, ok, expect)
				}
			}
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("expected transition %s never probed (unknown state?)", key)
		}
	}
}

// TestStableStatesClearTheTarget: the rule clients rely on to know an
// operation ended.
func TestStableStatesClearTheTarget(t *testing.T) {
	for _, tr := range transitions {
		to, target, ok := nextState(tr.From, StateActive, tr.Event)
		if ok && stableStates[to] && target != "" {
			t.Errorf("%s -%s-> %s keeps target %q", tr.From, tr.Event, to, target)
		}
	}
}

// TestInterruptibleStatesHaveFailures: every state a task works in, or an
// agent is waited for in, has somewhere to go when the work is lost.
func TestInterruptibleStatesHaveFailures(t *testing.T) {
	for s := range workStates {
		if _, ok := failedStates[s]; !ok {
			t.Errorf("work state %s has no failed state", s)
		}
	}
	for _, s := range waitStates {
		if _, ok := failedStates[s]; !ok {
			t.Errorf("wait state %s has no failed state", s)
		}
	}
}
