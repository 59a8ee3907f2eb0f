// Package conductor is the library through which every read and state change
// in Ferric goes. The operator API calls it while serving requests, the
// agent API through its agent side (package conductor/agents, which uses
// the small surface in agent_surface.go; this package never calls it); the
// ferric-conductor program runs its workers (RunWorkers) and periodic work
// (RunPeriodic). All state is in PostgreSQL: processes are stateless and any
// number of each can run against one database.
//
// # Provision states
//
// A node's provision state follows Ironic's state machine, written as one
// table (transitions in states.go). Operators ask for events (manage,
// provide, inspect, deploy, rebuild, delete, clean, abort); the conductor
// raises done, wait, resume and fail as the work progresses:
//
//	enroll --manage--> verifying --done--> manageable
//	manageable --inspect--> inspecting --done--> manageable        (--wait--> inspect wait)
//	manageable --provide--> cleaning --done--> available           (--wait--> clean wait)
//	available --deploy--> deploying --done--> active               (--wait--> wait call-back)
//	active --delete--> deleting --clean--> cleaning --done--> available
//	any work or wait state --fail--> its failed state (deploy failed, clean failed...)
//
// Stable states (enroll, manageable, available, active, error) clear
// target_provision_state; failed states keep it and last_error says why.
//
// # Agents and fast track
//
// Work that needs the machine's own disks waits for a deploy agent: the
// provision task boots it (a one-time PXE boot, a reboot, which revokes the
// agent tokens of the boot before) and the node waits (wait call-back, clean
// wait, inspect wait) until the agent reports; its success resumes the task
// (after a deploy: boot from disk, persistent, and reboot; after a clean or an
// inspection: power off, as Ironic does, unless fast track keeps the agent up),
// its failure fails the node. Undeploy forgets the instance
// (instance_info, instance_uuid), powers off and cleans. An automated clean
// (provide, undeploy) hands the agent the steps automatedCleanSteps chooses,
// stored on the node when it starts; Options.SkipAutomatedClean turns it
// off. With Options.FastTrack, a deploy, provide or clean of a node without
// last_error whose agent checked in within FastTrackTimeout keeps that
// agent's token, and the task, once the BMC says the machine is on, goes to
// the wait without touching it; a clean then ends with the machine left on.
//
// A request (ChangeProvisionState, ChangePowerState, an asynchronous vendor
// method) is one transaction: the node's row is locked (SELECT ... FOR
// UPDATE), the request is checked against the table and the node's lock,
// the first transition and target_* fields are written, and a task row is
// inserted to continue the work. When the API answers 202, the new state is
// committed and the work cannot be lost.
//
// # Node locks
//
// A node's exclusive lock is a lease on its row: reservation (the holder),
// reservation_expires_at, and lock_token, a fencing token incremented at
// every acquisition. Taking a held lock fails at once (fault.Locked, 409
// naming the holder): nobody queues behind a lock. An operator's power request
// alone waits a little, as Ironic's lock retries do: finding the node locked or
// a power change still pending (a reboot a moment from its end), it tries again
// up to three times a second apart, each try its own transaction, before 409.
// The holder renews the
// lease every third of its length while it works; every write it makes
// under the lock carries the token and requires an unexpired lease
// (store.Fence), so a holder that lost its lease, because it stalled or
// was cut off from the database, can no longer write even if it does not
// know yet. Its work is cancelled as soon as a renewal fails. The last write
// of a task and the release of the lock commit together, so no client sees
// a finished node that is still locked. Shared (read) access takes no lock.
//
// # Durable tasks
//
// Work that outlives a request is a row in the tasks table, inserted in the
// transaction that causes it. Conductors claim due tasks in batches with
// UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED), which gives
// concurrent conductors disjoint tasks without waiting on each other. A
// claimed task carries a lease and a claim token like a node lock: the
// runner renews it, and finishing or retrying a task is conditional on the
// token, so a task is never run by two conductors at once and a stale
// runner cannot record an outcome.
//
// Tasks run in bounded pools, one set of workers per pool per conductor:
// operator (power, provisioning, asynchronous passthru) and agent (work an
// agent's checkin resumes). A flood in one pool cannot take the other's
// workers. Each pool's queue has a limit; beyond it, requests are refused at
// once with fault.Unavailable (503) instead of piling up. Synchronous driver
// calls made while a client waits (boot device, synchronous passthru) run
// in a separate small pool in the calling process, with a deadline each,
// and are refused with 503 when it is full.
//
// # Failure handling
//
//   - A power action waits for its effect: after the driver's call the task
//     reads the power state until it is the action's target, for up to the
//     request's timeout or Options.PowerStateTimeout (Ironic's
//     node_wait_for_power_state), since many BMCs apply a reset seconds after
//     accepting it. A target never reached fails the action (last_error; the
//     state the BMC reports is recorded) and is not retried: the BMC took it.
//   - A driver call that fails or exceeds the task's deadline: power actions
//     the BMC refused or did not answer are retried with exponential backoff
//     up to their attempt limit; provisioning moves the node to the failed
//     state of where it was, with last_error. Either way the node lock is
//     released.
//   - A power action is never made twice. Before calling the BMC the task
//     records the call on its row (tasks.driver_call_at, under its claim
//     token). A run that finds it recorded (the conductor died, stopped or
//     lost its lease after the call) does not call again but reads the power
//     state, as Ironic never re-runs an interrupted power action: found at the
//     target, the action is recorded as done; otherwise the pending change is
//     cleared with last_error "pending power operation ... was aborted due to
//     conductor take over". A call the driver reported failed is forgotten,
//     so its retry calls again.
//   - A task waiting for a locked node is snoozed (queued again shortly)
//     without counting an attempt.
//   - A conductor that dies (SIGKILL, lost host, lost database): its task
//     leases expire; any conductor's periodic recovery claims the expired
//     tasks (SKIP LOCKED), bumping their claim tokens so the dead owner
//     could not finish them even if it came back. Retry-safe tasks run again
//     (a power task reads instead of calling when its call was made); others
//     fail and move their node to the failed state of the state the task last
//     wrote (a provision task records on its row each work state it moves the
//     node to, so a delete that reached cleaning fails to clean failed), with
//     a last_error naming the dead conductor. Its node leases expire too, so
//     the nodes are free again.
//   - A node left in a working state with no task for it (its work was
//     interrupted in a way no task records) is failed by a periodic check
//     after two task leases.
//   - An agent that never calls back: nodes waiting longer than the callback
//     timeout without a checkin from their agent move to their failed state,
//     with Ironic's "Timeout reached while ..." as last_error, and a power
//     off is queued in the same transaction. A bare ironic-python-agent
//     heartbeat is no call back in wait call-back or clean wait (Ferric does
//     not drive IPA, so nothing does the work), and the last_error says so.
//   - The database unreachable: workers and periodic jobs log, back off (up
//     to 5 s) and resume; because every step is a transaction, nothing is
//     half-written, and leases that expired meanwhile are recovered as above.
//   - A stopping conductor stops claiming, lets running tasks finish within
//     its grace period, then cancels them: retry-safe ones are queued again at
//     once, others fail their node as above.
//
// # Periodic work
//
// RunPeriodic registers the conductor (name, drivers, group) with a
// heartbeat every 10 s (dead after 60 s), and runs: task recovery, orphaned
// and timed-out node checks, finished-task cleanup, and power state sync.
// Power sync claims batches of due nodes with SKIP LOCKED (never nodes in
// enroll, as in Ironic: their BMC address is unverified, and discovery's comes
// from an agent), pushing each node's next due time one interval ahead, and
// reads them with bounded concurrency and a per-read timeout; drift is recorded
// in the node's history (or, with ForcePowerState, the hardware is set back),
// and a node whose BMC fails PowerSyncMaxFailures reads in a row gets fault
// "power failure" until it answers again. Any number of conductors share all of
// it without a coordinator.
package conductor
