package inventory

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Evidence kinds: what ties an inventory to a node.
const (
	KindMAC    = "mac"    // a port's MAC address
	KindBMC    = "bmc"    // the BMC address of the node's driver_info
	KindSerial = "serial" // the system serial number of the node's stored inventory
)

// Hit is one piece of evidence found on a node.
type Hit struct {
	Kind   string
	Value  string
	NodeID int64
}

// Verdict is how an inventory's evidence relates to the nodes.
type Verdict int

// Verdicts.
const (
	NoMatch  Verdict = iota // no node has any of the evidence
	Found                   // one node has all the evidence any node has, and more
	Conflict                // two nodes each have evidence the other lacks
	Tie                     // two nodes have exactly the same evidence
)

func (v Verdict) String() string {
	return [...]string{"no match", "match", "conflicting evidence", "tie"}[v]
}

// Match is the outcome of matching: the winner, or the nodes whose
// evidence made the lookup ambiguous.
type Match struct {
	Verdict  Verdict
	NodeID   int64   // Found: the node
	Involved []int64 // Conflict, Tie: the nodes that disagree, sorted
	Detail   string  // for logs and node history
}

// weights rank the kinds of evidence, for logs: a port's MAC is
// the strongest, a BMC address can be shared (Redfish aggregators), a
// serial number is only as good as the firmware that reports it.
var weights = map[string]int{KindMAC: 4, KindBMC: 2, KindSerial: 1}

// Decide picks the node an inventory belongs to from the evidence
// found on nodes. The node with the strongest evidence wins only if every
// other candidate's evidence is a strict subset of its own: a node matched
// by MAC and BMC address beats the other nodes behind the same BMC
// aggregator, but MACs of one node and the BMC of another is a conflict,
// and two nodes with the same evidence are a tie. Ambiguity is refused,
// never guessed.
func Decide(hits []Hit) Match {
	sets := map[int64]map[string]bool{}
	for _, h := range hits {
		if sets[h.NodeID] == nil {
			sets[h.NodeID] = map[string]bool{}
		}
		sets[h.NodeID][h.Kind+" "+h.Value] = true
	}
	if len(sets) == 0 {
		return Match{Verdict: NoMatch}
	}
	score := func(id int64) int {
		s := 0
		for item := range sets[id] {
			kind, _, _ := strings.Cut(item, " ")
			s += weights[kind]
		}
		return s
	}
	ids := make([]int64, 0, len(sets))
	for id := range sets {
		ids = append(ids, id)
	}
	// Strongest first; equal scores by id, so the outcome never depends on
	// map order.
	sort.Slice(ids, func(i, j int) bool {
		si, sj := score(ids[i]), score(ids[j])
		if si != sj {
			return si > sj
		}
		return ids[i] < ids[j]
	})
	best := ids[0]
	for _, other := range ids[1:] {
		extra := evidenceMissingFrom(sets[other], sets[best])
		switch {
		case extra != "":
			return Match{Verdict: Conflict, Involved: SortedIDs(best, other),
				Detail: fmt.Sprintf("node %d has %s, node %d has %s", best, describeEvidence(sets[best]), other, extra)}
		case len(sets[other]) == len(sets[best]):
			return Match{Verdict: Tie, Involved: SortedIDs(best, other),
				Detail: fmt.Sprintf("nodes %d and %d both have %s and nothing else", best, other, describeEvidence(sets[best]))}
		}
	}
	return Match{Verdict: Found, NodeID: best, Detail: describeEvidence(sets[best])}
}

// evidenceMissingFrom returns an item of a that b lacks, or "".
func evidenceMissingFrom(a, b map[string]bool) string {
	items := make([]string, 0, len(a))
	for item := range a {
		if !b[item] {
			items = append(items, item)
		}
	}
	if len(items) == 0 {
		return ""
	}
	slices.Sort(items)
	return items[0]
}

func describeEvidence(set map[string]bool) string {
	items := make([]string, 0, len(set))
	for item := range set {
		items = append(items, item)
	}
	slices.Sort(items)
	return strings.Join(items, ", ")
}

// SortedIDs returns the two node ids in ascending order.
func SortedIDs(a, b int64) []int64 {
	if a > b {
		a, b = b, a
	}
	return []int64{a, b}
}
