package agents_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/agent-api/agentwire"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/agents"
)

// TestNamesAreAgentwires holds the conductor side's action, command status,
// agent status and clean step names to agentwire's, which ferric-agent
// uses: each pair is equal, and agentwire declares no such name the
// conductor does not know (its source is read, so a constant added there
// fails this test until the conductor knows it too).
func TestNamesAreAgentwires(t *testing.T) {
	for _, pair := range [][2]string{
		{agents.ActionWait, agentwire.ActionWait}, {agents.ActionDeploy, agentwire.ActionDeploy},
		{agents.ActionClean, agentwire.ActionClean}, {agents.ActionInspect, agentwire.ActionInspect},
		{agents.ActionPowerOff, agentwire.ActionPowerOff}, {agents.ActionReboot, agentwire.ActionReboot},
		{agents.CommandRunning, agentwire.CommandRunning}, {agents.CommandSuccess, agentwire.CommandSuccess},
		{agents.CommandFailed, agentwire.CommandFailed},
		{agents.StatusIdle, agentwire.StatusIdle}, {agents.StatusBusy, agentwire.StatusBusy}, {agents.StatusError, agentwire.StatusError},
		{conductor.CleanStepEraseDevicesMetadata, agentwire.StepEraseDevicesMetadata},
		{conductor.CleanStepEraseDevices, agentwire.StepEraseDevices},
	} {
		if pair[0] != pair[1] {
			t.Errorf("the conductor says %q where agentwire says %q", pair[0], pair[1])
		}
	}
	declared := agentwireConstants(t)
	for prefix, known := range map[string][]string{
		"Action":  agents.Actions,
		"Command": agents.CommandStatuses,
		"Status":  agents.AgentStatuses,
		"Step":    {conductor.CleanStepEraseDevicesMetadata, conductor.CleanStepEraseDevices},
	} {
		var wire []string
		for name, value := range declared {
			if strings.HasPrefix(name, prefix) {
				wire = append(wire, value)
			}
		}
		slices.Sort(wire)
		mine := slices.Sorted(slices.Values(known))
		if !slices.Equal(wire, mine) {
			t.Errorf("agentwire's %s* names are %q, the conductor's %q", prefix, wire, mine)
		}
	}
}

// agentwireConstants reads agentwire's string constants, by name.
func agentwireConstants(t *testing.T) map[string]string {
	t.Helper()
	const dir = "../../agent-api/agentwire"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						out[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no constants found in agentwire's source")
	}
	return out
}
