package workflows

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

// TenantStates is what the API lets clients filter on: it must name every
// State* constant of the package, so a new state cannot be forgotten.
func TestTenantStatesListsEveryState(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	stateConst := regexp.MustCompile(`^State[A-Z]`)
	fset := token.NewFileSet()
	var states []string
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
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING && stateConst.MatchString(name.Name) {
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					states = append(states, v)
				}
			}
			return false
		})
	}
	require.NotEmpty(t, states)
	require.ElementsMatch(t, states, TenantStates)
}
