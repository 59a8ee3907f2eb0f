package drivers

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Registry holds the drivers compiled into the program and which of them are
// enabled. It is built once at start-up and read-only afterwards.
type Registry struct {
	available map[string]Driver
	enabled   []string
}

// NewRegistry returns a registry of the given drivers, none enabled.
func NewRegistry(ds ...Driver) *Registry {
	r := &Registry{available: map[string]Driver{}}
	for _, d := range ds {
		if _, dup := r.available[d.Name()]; dup {
			panic("drivers: duplicate driver " + d.Name()) // a build mistake
		}
		r.available[d.Name()] = d
	}
	return r
}

// Enable enables the named drivers; an unknown name is an error that lists
// the available ones.
func (r *Registry) Enable(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("no driver enabled: set FERRIC_ENABLED_DRIVERS to some of: %s", strings.Join(r.Names(), ", "))
	}
	seen := map[string]bool{}
	var enabled []string
	for _, n := range names {
		if _, ok := r.available[n]; !ok {
			return fmt.Errorf("unknown driver %q in FERRIC_ENABLED_DRIVERS; available: %s", n, strings.Join(r.Names(), ", "))
		}
		if !seen[n] {
			seen[n] = true
			enabled = append(enabled, n)
		}
	}
	sort.Strings(enabled)
	r.enabled = enabled
	return nil
}

// Names lists the available drivers, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.available))
	for n := range r.available {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EnabledNames lists the enabled drivers, sorted.
func (r *Registry) EnabledNames() []string { return append([]string(nil), r.enabled...) }

// IsEnabled reports whether the named driver is enabled.
func (r *Registry) IsEnabled(name string) bool {
	for _, n := range r.enabled {
		if n == name {
			return true
		}
	}
	return false
}

// Get returns an enabled driver.
func (r *Registry) Get(name string) (Driver, bool) {
	if !r.IsEnabled(name) {
		return nil, false
	}
	return r.available[name], true
}

// Available returns a compiled-in driver, enabled or not.
func (r *Registry) Available(name string) (Driver, bool) {
	d, ok := r.available[name]
	return d, ok
}

// Close releases what drivers hold between calls (cached BMC connections),
// for those that implement io.Closer. Call it when the program stops.
func (r *Registry) Close() error {
	var errs []error
	for _, d := range r.available {
		if c, ok := d.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
