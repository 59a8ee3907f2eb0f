// Package agents is the conductor's agent side: everything the agent API
// (ferric-agent-api) does for deploy agents. It finds the node an agent runs
// on (Lookup, from an inventory or IPA's MACs), enrolls unknown machines
// when discovery is on, hands out and checks agent tokens, stores
// inventories during inspection, and answers checkins (native) and
// heartbeats (IPA) with what the agent is to do next, settling what it
// reports. It never talks to a BMC: the work a report starts runs as a
// conductor task (package conductor), which this package only queues.
//
// # What a checkin hands out
//
// A node waiting for its agent hands out that wait's command: wait call-back
// deploy (agentwire.DeployArgs: the image and disk layout of instance_info,
// the root device hints), clean wait clean (agentwire.CleanArgs: the steps
// the conductor stored when the clean started, an operator's or the
// automated defaults), inspect wait inspect. A node at rest (enroll,
// manageable, available) tells its agent to power off, unless fast track is
// on: then the agent stays up (wait), and the conductor may hand a deploy or
// clean to it without a power cycle (conductor.Options.FastTrack). Anything
// else, or maintenance, is wait.
//
// # One statement per checkin
//
// A checkin is one statement on its common path (store.RecordCheckin): it
// reads the node by its UUID, checks the token's generation against the
// node's and upserts the node's single agent_checkins row, returning the
// node and what the previous checkin reported. Anything more is rare and
// costs a second statement or a short transaction: the first time a
// command is handed out in a state (store.MarkCommandGiven, which also
// writes "Agent given deploy" to the node's history), a report that differs
// from the last one (running, once; the outcome of a command nothing waits
// for), and settling.
//
// # Reports resume or fail nodes
//
// An agent's success or failure of the command its node waits for is
// settled in a transaction under the node's row lock, after checking again
// that the token is current and the node still waits: success resumes the
// node (conductor.ResumeAgentWait: a task in the agent pool boots it from
// disk, ends the clean or the inspection); failure fails it
// (conductor.FailAgentWait) with last_error "Agent reported that deploy
// failed: <the agent's reason>". A node whose lock a conductor holds
// answers fault.Locked (409): the agent retries.
//
// An ironic-python-agent's bare heartbeat reports nothing done: Ferric does
// not drive IPA (it never calls the agent's API), so in wait call-back and
// clean wait a heartbeat is recorded, noted once in the history, and settles
// nothing; the callback timeout fails the node saying why. Its inspection
// data does settle inspect wait, and a ramdisk's agent_status end or error
// settles any wait (it did the work itself).
//
// # Tokens and locks
//
// Agent tokens are JWTs whose generation is the node's
// agent_token_generation; the conductor bumps it (revoking them) at every
// power off or reboot and every operator action, except a fast-track deploy
// or clean, which goes on with the agent of this boot. Each boot's token is
// revealed once (store.RevealAgentToken); later lookups get "******". This
// package never bumps a generation and never takes a node lock: it reads
// the lock to refuse, and writes only what the agent API's database role
// allows (deployments/database-roles.sql): a waiting node's resumption or
// failure, inspection properties, the reveal, its own tables, history and
// the resumption task.
package agents
