package agents

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/inventory"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/shared/fault"
)

// errLookupFailed is the one answer an agent gets for an unknown machine, a
// node that expects no agent, an ambiguous match or a refused discovery, so
// that an agent learns nothing about other nodes. The log, and the node's
// history when there is a node, say which it was.
var errLookupFailed = fault.New(fault.NotFound, "Node could not be found.")

// maxEvidenceHits bounds the rows one kind of evidence may match: more
// nodes than this behind one BMC address (an aggregator) makes that
// address useless as evidence, and it is ignored.
const maxEvidenceHits = 64

// historyQuiet is how long a refused lookup is not recorded again in the
// node's history: agents retry every few seconds.
const historyQuiet = 10 * time.Minute

// LookupRequest is an agent asking which node it runs on.
type LookupRequest struct {
	// Data is the agent's inventory: Ferric's native lookup and IPA's
	// inspection upload send one.
	Data *inventory.Data
	// MACs are IPA's lookup addresses (GET /v1/lookup?addresses=), in any
	// notation; invalid ones are dropped.
	MACs []string
	// NodeUUID is IPA's node_uuid: the node named, provided no MAC says
	// otherwise.
	NodeUUID string
	// Source is the agent's address, for logs, history and the discovery
	// quota.
	Source netip.Addr
	// IPA is set for ironic-python-agent's lookup: its token cannot be
	// renewed, so it lives ipaTokenTTL instead of the configured TTL.
	IPA bool
}

// LookupResult is the node an agent runs on.
type LookupResult struct {
	Node *store.AgentNode
	// Token is the node's agent token, or "" when the token of this boot
	// was revealed before (the agent is shown "******").
	Token      string
	Discovered bool // the node was enrolled by this lookup
}

// Lookup finds the node an agent runs on from its inventory or MACs, the
// node being in a state that expects an agent, and reveals the agent token
// of this boot if no lookup has yet. With discovery on, an inventory that
// matches nothing enrolls a new node. When the node is being inspected (or,
// with discovery on, is in enroll), the inventory is stored with it and its
// properties updated: during inspection only the inventory of the lookup
// that wins the reveal (a later lookup of the same boot, which anyone
// knowing the MACs can send, changes nothing); in enroll, the latest.
func (a *Agents) Lookup(ctx context.Context, req LookupRequest) (*LookupResult, error) {
	found, err := a.find(ctx, req)
	if err != nil {
		return nil, err
	}
	n := found.node
	if !found.created && !a.c.ExpectsAgent(n.ProvisionState) {
		return nil, a.refuseState(ctx, n, sourceText(req.Source))
	}
	note := a.history(n.ID, "INFO", fmt.Sprintf(
		"Agent at %s looked the node up in %s; the agent token of boot %d was handed out.",
		sourceText(req.Source), n.ProvisionState, n.TokenGeneration))
	var revealed bool
	if req.Data == nil || found.created || !a.acceptsInventory(n) {
		revealed, err = store.RevealAgentToken(ctx, a.q, n.ID, n.TokenGeneration, note)
	} else {
		// The reveal and the inventory commit together: during inspection
		// only the lookup that wins the reveal stores its inventory;
		// discovery's node in enroll takes the latest (see saveInventory).
		err = store.Transact(ctx, a.db, func(tx *sqlx.Tx) error {
			var err error
			if revealed, err = store.RevealAgentToken(ctx, tx, n.ID, n.TokenGeneration, note); err != nil {
				return err
			}
			if !revealed && n.ProvisionState != conductor.StateEnroll {
				return nil
			}
			_, err = a.saveInventory(ctx, tx, n, req.Data, sourceText(req.Source))
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	res := &LookupResult{Node: n, Discovered: found.created}
	if revealed {
		ttl := a.opts.TokenTTL
		if req.IPA {
			ttl = ipaTokenTTL
		}
		if res.Token, err = a.mintToken(n.UUID, n.TokenGeneration, ttl); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// ContinueInspection takes IPA's inspection data (POST
// /v1/continue_inspection): the node must be inspecting, or in enroll with
// discovery on; with discovery on an unmatched inventory enrolls a node.
// The inventory is stored and the node's properties updated; a node in
// inspect wait resumes. It returns the node's UUID, which IPA passes to its
// lookup.
func (a *Agents) ContinueInspection(ctx context.Context, req LookupRequest) (string, error) {
	if req.Data == nil {
		return "", fault.New(fault.Invalid, "Inspection data is required.")
	}
	found, err := a.find(ctx, req)
	if err != nil {
		return "", err
	}
	n := found.node
	if found.created {
		return n.UUID, nil
	}
	if !a.acceptsInventory(n) {
		return "", a.refuseState(ctx, n, sourceText(req.Source))
	}
	var refusedBoot int64 // set when this boot's inventory was stored already
	err = store.Transact(ctx, a.db, func(tx *sqlx.Tx) error {
		cur, err := store.GetAgentNodeForUpdate(ctx, tx, n.ID)
		if err != nil {
			return err
		}
		if !a.acceptsInventory(cur) { // moved on meanwhile
			a.log.Info("inspection data refused: the node left inspection meanwhile", "node", cur.UUID, "provision_state", cur.ProvisionState)
			return errLookupFailed
		}
		saved, err := a.saveInventory(ctx, tx, cur, req.Data, sourceText(req.Source))
		if err != nil {
			return err
		}
		if !saved {
			refusedBoot = cur.TokenGeneration
			return errLookupFailed
		}
		if cur.ProvisionState == conductor.StateInspectWait && !cur.Maintenance {
			_, err = a.c.ResumeAgentWait(ctx, tx, &cur.Node)
		}
		return err
	})
	if refusedBoot != 0 { // recorded once the row lock is released: the history row refers to it
		a.log.Info("inspection data refused: this boot's inventory is stored already", "node", n.UUID,
			"source", sourceText(req.Source))
		a.historyOnce(ctx, n.ID, refusedInventory, fmt.Sprintf(
			"Inspection data from %s refused: the inventory of boot %d was stored already.", sourceText(req.Source), refusedBoot))
	}
	if err != nil {
		return "", err
	}
	return n.UUID, nil
}

// lookupTarget is the node a lookup's evidence designates.
type lookupTarget struct {
	node    *store.AgentNode
	created bool // enrolled by discovery just now
}

// find resolves a lookup to one node, or refuses with errLookupFailed.
func (a *Agents) find(ctx context.Context, req LookupRequest) (*lookupTarget, error) {
	var ev inventory.Evidence
	if req.Data != nil {
		ev = inventory.EvidenceOf(&req.Data.Inventory)
	} else {
		ev.MACs = normalizeMACs(req.MACs)
	}
	if req.NodeUUID != "" && !conductor.IsUUID(req.NodeUUID) {
		return nil, fault.New(fault.Invalid, "Invalid node_uuid %q: expected a UUID.", req.NodeUUID)
	}
	if req.NodeUUID != "" && len(ev.MACs) == 0 {
		// A UUID is no secret (logs, tickets, tooling): alone it would hand
		// this boot's token to anyone who knows it (docs/security.md).
		return nil, fault.New(fault.Invalid, "Lookup by node_uuid needs a MAC address of the node in addresses too.")
	}
	if ev.Empty() && req.NodeUUID == "" {
		if req.Data != nil {
			return nil, fault.New(fault.Invalid, "The inventory gives nothing to identify the machine by: no valid MAC address, BMC address or serial number.")
		}
		return nil, fault.New(fault.Invalid, "Lookup needs at least one valid MAC address in addresses, or node_uuid.")
	}
	source := sourceText(req.Source)
	for attempt := 1; ; attempt++ {
		hits, nodes, err := a.findEvidence(ctx, a.q, ev)
		if err != nil {
			return nil, err
		}
		if req.NodeUUID != "" {
			return a.findByUUID(ctx, req.NodeUUID, hits, source)
		}
		m := inventory.Decide(hits)
		if m.Verdict == inventory.NoMatch && req.Data != nil && a.opts.Discovery.Enabled {
			d, err := a.discover(ctx, req.Data, ev, req.Source)
			if isRetryableDiscovery(err) && attempt < 3 {
				continue // a MAC was attached meanwhile outside discovery: match again
			}
			if err != nil {
				return nil, err
			}
			if d.created || d.match.Verdict == inventory.Found {
				return &lookupTarget{node: d.node, created: d.created}, nil
			}
			m = d.match
		}
		switch m.Verdict {
		case inventory.NoMatch:
			a.log.Info("lookup refused: no node matches", "source", source,
				"macs", ev.MACs, "bmc_addresses", ev.BMCs, "serial", ev.Serial)
			return nil, errLookupFailed
		case inventory.Conflict, inventory.Tie:
			return nil, a.refuseAmbiguous(ctx, m, source)
		}
		return &lookupTarget{node: nodes[m.NodeID]}, nil
	}
}

// findByUUID resolves IPA's node_uuid: the node must exist, one of the MACs
// the agent sent must be a port of it (unlike Ironic, which ignores the
// MACs then: a UUID alone is too easily known), and no evidence may belong
// to another node (a sign of ports created wrong).
func (a *Agents) findByUUID(ctx context.Context, id string, hits []inventory.Hit, source string) (*lookupTarget, error) {
	n, err := store.GetAgentNodeByUUID(ctx, a.q, id)
	if errors.Is(err, store.ErrNotFound) {
		a.log.Info("lookup refused: no node has the given node_uuid", "source", source, "node_uuid", id)
		return nil, errLookupFailed
	}
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(hits, func(h inventory.Hit) bool { return h.NodeID == n.ID && h.Kind == inventory.KindMAC }) {
		a.log.Warn("lookup refused: node_uuid given without a MAC of that node", "source", source, "node_uuid", id)
		return nil, errLookupFailed
	}
	for _, h := range hits {
		if h.NodeID != n.ID {
			m := inventory.Match{Verdict: inventory.Conflict, Involved: inventory.SortedIDs(n.ID, h.NodeID),
				Detail: fmt.Sprintf("node_uuid names node %d, but %s %s belongs to node %d", n.ID, h.Kind, h.Value, h.NodeID)}
			return nil, a.refuseAmbiguous(ctx, m, source)
		}
	}
	return &lookupTarget{node: n}, nil
}

// findEvidence looks the evidence up, ignoring a kind that matched too
// many nodes to tell any apart. It returns the hits and the nodes they are
// on, by id.
func (a *Agents) findEvidence(ctx context.Context, q store.Querier, ev inventory.Evidence) ([]inventory.Hit, map[int64]*store.AgentNode, error) {
	var serial *string
	if ev.Serial != "" {
		serial = &ev.Serial
	}
	found, truncated, err := store.FindEvidence(ctx, q, ev.MACs, ev.BMCs, serial, maxEvidenceHits)
	if err != nil {
		return nil, nil, err
	}
	hits := make([]inventory.Hit, 0, len(found))
	nodes := map[int64]*store.AgentNode{}
	for i, h := range found {
		if !truncated[h.Kind] {
			hits = append(hits, inventory.Hit{Kind: h.Kind, Value: h.Value, NodeID: h.ID})
			nodes[h.ID] = &found[i].AgentNode
		}
	}
	for kind, t := range truncated {
		if t {
			a.log.Warn("lookup: evidence shared by too many nodes is ignored", "kind", kind, "limit", maxEvidenceHits)
		}
	}
	return hits, nodes, nil
}

// refuseState records that a node was found in a state that expects no
// agent (or takes no inventory), and returns the generic answer.
func (a *Agents) refuseState(ctx context.Context, n *store.AgentNode, source string) error {
	a.log.Info("lookup refused: the node does not expect an agent in its state",
		"node", n.UUID, "provision_state", n.ProvisionState, "source", source)
	a.historyOnce(ctx, n.ID, refusedState, fmt.Sprintf(
		"Agent lookup from %s refused: provision state %q does not expect an agent.", source, n.ProvisionState))
	return errLookupFailed
}

// refuseAmbiguous records an ambiguous match on every node involved, and
// returns the generic answer.
func (a *Agents) refuseAmbiguous(ctx context.Context, m inventory.Match, source string) error {
	a.log.Warn("lookup refused: ambiguous evidence; not guessing", "verdict", m.Verdict.String(),
		"node_ids", m.Involved, "detail", m.Detail, "source", source)
	for _, id := range m.Involved {
		a.historyOnce(ctx, id, refusedAmbiguous, fmt.Sprintf(
			"Agent lookup from %s refused: %s between nodes %v (%s).", source, m.Verdict, m.Involved, m.Detail))
	}
	return errLookupFailed
}

// The kinds of refusal recorded in node histories, each once per episode
// (their event types: one kind does not hide another).
const (
	refusedState     = "agent_refused_state"     // the node expects no agent
	refusedAmbiguous = "agent_refused_ambiguous" // conflicting evidence or a tie
	refusedInventory = "agent_refused_inventory" // this boot's inventory is stored already
)

// historyOnce records an agent's refusal of the given kind in the node's
// history unless one of that kind was recorded recently. History is an
// aid: failures are logged only.
func (a *Agents) historyOnce(ctx context.Context, nodeID int64, kind, event string) {
	e := a.history(nodeID, "WARNING", event)
	e.EventType = kind
	if err := store.AddHistoryUnlessRecent(ctx, a.q, e, historyQuiet); err != nil {
		a.log.Warn("writing node history failed", "node_id", nodeID, "error", err)
	}
}

func normalizeMACs(addresses []string) []string {
	var macs []string
	seen := map[string]bool{}
	for _, s := range addresses {
		if mac, ok := inventory.NormalizeMAC(s); ok && !seen[mac] && len(macs) < inventory.MaxEvidenceMACs {
			seen[mac] = true
			macs = append(macs, mac)
		}
	}
	return macs
}

// sourceText is how a source address is written in logs, history and the
// discovery quota.
func sourceText(a netip.Addr) string {
	if !a.IsValid() {
		return "(unknown)"
	}
	return a.Unmap().String()
}
