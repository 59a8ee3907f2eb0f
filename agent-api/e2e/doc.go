// Package e2e holds the end-to-end tests of the deploy flows: the real
// ferric-public-api, ferric-agent-api and ferric-conductor programs over a
// throwaway PostgreSQL, nodes behind simulated Redfish BMCs, and deploy
// agents (package agent, or the ferric-agent program with -simulate)
// writing images from an in-test HTTP server onto sparse files standing in
// for disks. The operator's side is driven through gophercloud's baremetal
// client, as Metal3 drives Ironic.
package e2e
