// Package agent is ferric-agent, the deploy agent that runs in the ramdisk
// of a machine being provisioned: it inventories the machine, looks its
// node up, checks in at the interval the agent API names and carries out
// the commands the checkins hand it (deploy, clean, inspect, power_off).
//
// The agent only ever calls the agent API (and, for a deploy, the image
// server): nothing connects to it. Every command reaches it as the answer
// to a checkin, and its outcome goes back with the next checkins, until the
// node moves on.
//
// # The loop
//
// A boot starts with lookup, retried with bounded exponential back-off and
// jitter until the agent API answers with a token. A "******" token means
// the token of this boot was handed out already (to this agent before it
// restarted, or to someone else): the agent never proceeds without a token,
// and looks up again slowly until a new boot of the node (a power cycle by
// the conductor) allows a new reveal. With a token, the agent checks in
// every checkin_interval seconds (with ±10% jitter), adopts a renewed token
// when an answer carries one, and starts the command an answer names. While
// a command runs, each checkin reports it running; when it ends, the agent
// checks in at once with success or failure (and why), and keeps reporting
// that outcome until a new command starts.
//
// Refusals are survived, never fatal: a network error, 409 (the node is
// locked), 429 (rate limited: Retry-After is honoured) or 5xx makes the
// agent try again after a back-off; 401 means the token was revoked (the
// node was power-cycled or moved on): a running command is cancelled and
// the agent looks up again, as a new boot.
//
// # Hardware
//
// Machine facts come from hwinventory: the running Linux machine, or a
// simulation profile whose disks are files and whose power commands only
// log (ferric-agent --simulate). A fleet of simulated agents can run in one
// process (RunFleet) for end-to-end tests, benchmarks and the demo.
package agent
