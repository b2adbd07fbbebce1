package tenant

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// constants returns the values of the package's string constants whose
// names match pattern, so a list or a table cannot forget one.
func constants(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	re := regexp.MustCompile(pattern)
	fset := token.NewFileSet()
	var out []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if i >= len(vs.Values) {
					break
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING && re.MatchString(name.Name) {
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					out = append(out, v)
				}
			}
			return false
		})
	}
	require.NotEmpty(t, out)
	return out
}

// States is what the API lets clients filter on: it must name every
// State* constant of the package, so a new state cannot be forgotten.
func TestTenantStatesListsEveryState(t *testing.T) {
	var states []string
	for _, s := range States {
		states = append(states, string(s))
	}
	require.ElementsMatch(t, constants(t, `^State[A-Z]`), states)
}

// Every state is reachable from provisioning, and only failed is final
// for a tenant's lifecycle (decommissioned waits for a restore or a
// purge, which ends the workflow in that state).
func TestTenantLifecycle(t *testing.T) {
	reached := map[State]bool{StateProvisioning: true}
	for queue := []State{StateProvisioning}; len(queue) > 0; queue = queue[1:] {
		for _, next := range stateMoves[queue[0]] {
			if !reached[next] {
				reached[next] = true
				queue = append(queue, next)
			}
		}
	}
	for _, s := range States {
		require.True(t, reached[s], "%s cannot be reached from provisioning", s)
		if s != StateFailed {
			require.NotEmpty(t, stateMoves[s], "%s has no way out", s)
		}
	}
	require.Empty(t, stateMoves[StateFailed])

	for _, c := range []struct {
		from, to State
		ok       bool
	}{
		{StateProvisioning, StateActive, true},
		{StateProvisioning, StateFailed, true},
		{StateActive, StateUpdating, true},
		{StateUpdating, StateActive, true},
		{StateActive, StateDecommissioning, true},
		{StateDecommissioning, StateActive, true}, // the backup failed: serving again
		{StateSuspended, StateDecommissioning, true},
		{StateDecommissioning, StateSuspended, true}, // the backup failed: suspended again
		{StateSuspended, StateUpdating, false},
		{StateDecommissioned, StateRestoring, true},
		{StateActive, StateRestoring, true}, // put back to one of its backups
		{StateRestoring, StateActive, true},
		{StateRestoring, StateDecommissioned, true}, // the restore failed
		{StateFailed, StateActive, false},
		{StateFailed, StateProvisioning, false},
		{StateProvisioning, StateDecommissioning, false},
		{StateUpdating, StateDecommissioning, false},
		{StateDecommissioned, StateActive, false}, // only through a restore
		{StateActive, StateActive, false},
	} {
		got, err := c.from.To(c.to)
		if c.ok {
			require.NoError(t, err, "%s → %s", c.from, c.to)
			require.Equal(t, c.to, got)
		} else {
			require.ErrorContains(t, err, `tenant state: "`+string(c.from)+`" may not move to "`+string(c.to)+`"`)
			require.Equal(t, c.from, got, "a refused move leaves the state as it was")
		}
	}
}

// A decommission's phases: the table names every Phase* constant, and
// once the backup is verified it can no longer fail back.
func TestDecommissionPhases(t *testing.T) {
	named := map[string]bool{}
	for from, tos := range phaseMoves {
		named[string(from)] = true
		for _, to := range tos {
			named[string(to)] = true
		}
	}
	for _, p := range constants(t, `^Phase[A-Z]`) {
		require.True(t, named[p], "phase %q is missing from phaseMoves", p)
	}
	for _, c := range []struct {
		from, to Phase
		ok       bool
	}{
		{phaseNew, PhaseAwaitingConfirmation, true},
		{phaseNew, PhaseConfirmed, true}, // force
		{PhaseAwaitingConfirmation, PhaseCancelled, true},
		{PhaseVerifying, PhaseFailed, true},
		{PhaseTearingDown, PhaseFailed, false}, // the data is safe: no way back
		{PhaseRetained, PhaseRestoreRequested, true},
		{PhaseRestoring, PhaseRetained, true},
		{PhaseCancelled, PhaseConfirmed, false},
		{PhasePurged, PhaseRestoreRequested, false},
		{phaseNew, PhaseStopping, false},
	} {
		_, err := c.from.To(c.to)
		require.Equal(t, c.ok, err == nil, "%q → %q: %v", c.from, c.to, err)
	}
}
