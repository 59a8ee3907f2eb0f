package main

import (
	"os/exec"
	"strings"
	"testing"
)

// bmcPackages are the import paths (or their prefixes) of BMC code: Ferric's
// BMC drivers, the registry that links them, and the BMC client libraries.
var bmcPackages = []string{
	"github.com/ferric-metal/ferric/drivers/builtin",
	"github.com/ferric-metal/ferric/drivers/redfish",
	"github.com/ferric-metal/ferric/drivers/ipmi",
	"github.com/stmcginnis/gofish",
	"github.com/bougou/go-ipmi",
}

// The agent API runs on the untrusted provisioning network and promises to
// hold no BMC code (docs/security.md): none of its dependencies may be one.
func TestLinksNoBMCCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), deps)
	}
	for _, dep := range deps {
		for _, bmc := range bmcPackages {
			if dep == bmc || strings.HasPrefix(dep, bmc+"/") {
				t.Errorf("the agent API links %s (BMC code)", dep)
			}
		}
	}
}
