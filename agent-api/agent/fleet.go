package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/ferric-metal/ferric/agent-api/hwinventory"
)

// FleetConfig describes a fleet of simulated agents run in one process.
type FleetConfig struct {
	Agent    Config // shared by every agent
	Machines int    // how many
	// First is the index of the first machine: machines i and j of any
	// fleets have distinct MACs and serials when i != j.
	First    int
	Dir      string // where their disk files go
	DiskSize int64  // bytes of each machine's (sparse) disk
	Client   *http.Client
	Log      *slog.Logger
}

// FleetProfiles returns the profiles of a fleet's machines, creating their
// disk files.
func FleetProfiles(cfg FleetConfig) ([]*hwinventory.Profile, error) {
	profiles := make([]*hwinventory.Profile, cfg.Machines)
	for i := range profiles {
		p, err := hwinventory.SimulatedProfile(cfg.First+i, cfg.Dir, cfg.DiskSize)
		if err != nil {
			return nil, fmt.Errorf("machine %d: %w", cfg.First+i, err)
		}
		profiles[i] = p
	}
	return profiles, nil
}

// RunFleet runs an agent on each profile until ctx ends. Every agent is
// owned by RunFleet, which returns once all have stopped.
func RunFleet(ctx context.Context, cfg FleetConfig, profiles []*hwinventory.Profile) error {
	var wg sync.WaitGroup
	for i, p := range profiles {
		log := cfg.Log.With("machine", cfg.First+i)
		a := New(cfg.Agent, cfg.Client, &SimulatedMachine{Profile: p, Log: log}, log)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = a.Run(ctx)
		}()
	}
	wg.Wait()
	return nil
}
