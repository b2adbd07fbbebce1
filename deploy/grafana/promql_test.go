package grafana

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Prometheus Debian ships (2.42) has no parse endpoint that returns a
// query's syntax tree, so the names a query selects are read by a small
// PromQL scanner. Prometheus itself has already parsed each query when the
// scanner reads it: the scanner only has to tell metric names from
// functions, keywords and labels, never to judge the syntax.

// promKeywords are the words that are never metric names: aggregation
// operators (followed by by/without before their parenthesis), binary
// set operators and modifiers, and the number literals.
var promKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true, "offset": true,
	"inf": true, "nan": true,
}

// promLabelLists are the keywords whose parenthesis lists label names.
var promLabelLists = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// metricNames returns the metric names expr selects, in order. A
// __name__ matcher is refused: the test could not check the name.
func metricNames(expr string) ([]string, error) {
	var names []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '#':
			i = skipPast(expr, i, "\n")
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '{':
			end, err := skipBraces(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '[':
			i = skipPast(expr, i, "]")
		case isDigit(c) || c == '.':
			i = skipNumber(expr, i)
		case isIdentStart(c):
			word, next := readIdent(expr, i)
			after := skipSpace(expr, next)
			paren := after < len(expr) && expr[after] == '('
			lower := strings.ToLower(word)
			switch {
			case promLabelLists[lower] && paren:
				next = skipPast(expr, after, ")")
			case promLabelLists[lower], promKeywords[lower], paren: // a function
			default:
				names = append(names, word)
			}
			i = next
		default:
			i++
		}
	}
	return names, nil
}

// skipBraces skips a label matcher list, refusing a __name__ matcher.
func skipBraces(expr string, i int) (int, error) {
	for j := i + 1; j < len(expr); {
		switch c := expr[j]; {
		case c == '}':
			return j + 1, nil
		case c == '"' || c == '\'' || c == '`':
			j = skipString(expr, j)
		case isIdentStart(c):
			word, next := readIdent(expr, j)
			if word == "__name__" {
				return 0, fmt.Errorf("a __name__ matcher in %q: name the metric so its name can be checked", expr[i:])
			}
			j = next
		default:
			j++
		}
	}
	return len(expr), nil
}

func skipString(expr string, i int) int {
	quote := expr[i]
	for j := i + 1; j < len(expr); j++ {
		switch expr[j] {
		case '\\':
			if quote != '`' {
				j++
			}
		case quote:
			return j + 1
		}
	}
	return len(expr)
}

// skipPast returns the index after the first end at or after i+1 (the
// end of expr when there is none).
func skipPast(expr string, i int, end string) int {
	if k := strings.Index(expr[i+1:], end); k >= 0 {
		return i + 1 + k + len(end)
	}
	return len(expr)
}

// skipNumber skips a number or duration literal (0.95, 1e3, 0x1f, 5m, 1h30m).
func skipNumber(expr string, i int) int {
	j := i
	for j < len(expr) {
		c := expr[j]
		if isDigit(c) || isLetter(c) || c == '.' || c == '_' ||
			((c == '+' || c == '-') && j > i && (expr[j-1] == 'e' || expr[j-1] == 'E')) {
			j++
			continue
		}
		break
	}
	return max(j, i+1)
}

func readIdent(expr string, i int) (string, int) {
	j := i
	for j < len(expr) && (isIdentStart(expr[j]) || isDigit(expr[j])) {
		j++
	}
	return expr[i:j], j
}

func skipSpace(expr string, i int) int {
	for i < len(expr) && strings.IndexByte(" \t\r\n", expr[i]) >= 0 {
		i++
	}
	return i
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isLetter(c byte) bool     { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentStart(c byte) bool { return isLetter(c) || c == '_' || c == ':' }

// grafanaVar matches a Grafana variable reference: ${name}, ${name:format},
// $name or [[name]].
var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]`)

// builtinVars are the values given to Grafana's own variables: what a
// dashboard over the last hour at a 15 s scrape interval would get.
var builtinVars = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__interval_ms":   "15000",
	"__range":         "1h",
	"__range_s":       "3600",
	"__range_ms":      "3600000",
}

// substitute replaces every variable reference in expr by its value in
// vars or builtinVars; an unknown variable is an error. $1 and the like
// are label_replace's capture groups, which Grafana leaves alone.
func substitute(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(ref string) string {
		m := grafanaVar.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		if strings.Trim(name, "0123456789") == "" {
			return ref
		}
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := builtinVars[name]; ok {
			return v
		}
		unknown = append(unknown, ref)
		return ref
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("undefined variables %v", unknown)
	}
	return out, nil
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (operation, outcome) (increase(tenantflow_operations_total{workflow_type="Tenant", outcome=~"a|b"}[5m]))`,
			[]string{"tenantflow_operations_total"}},
		{`up and on (job) (count by (job) (last_over_time(a[1d])) or count by (job) (b))`, []string{"up", "a", "b"}},
		{`histogram_quantile(0.95, sum by (le) (rate(x_bucket[1m])))`, []string{"x_bucket"}},
		{`count(probe_success{job="j"} == 0) or vector(0)`, []string{"probe_success"}},
		{`time() - max by (tenant) (g)`, []string{"g"}},
		{`label_replace(m, "dst", "$1 by (x)", "src", "(.*)")`, []string{"m"}},
		{`sum without (instance) (m) / ignoring (x) group_left (y) n`, []string{"m", "n"}},
		{`sum(m) by (x) > bool 1e-3`, []string{"m"}},
		{`rate(m[5m] offset 1h) * 0x1f`, []string{"m"}},
		{`m @ start()`, []string{"m"}},
		{`avg(m) # a comment naming words`, []string{"m"}},
		{`max_over_time(m:rate5m[10m:1m]) + Inf - NaN`, []string{"m:rate5m"}},
		{`topk(5, m{a='x\'y', b=~"}"})`, []string{"m"}},
		{"count_values(`le`, m)", []string{"m"}},
		{`sum(rate(a_sum[1m])) / sum(rate(a_count[1m]))`, []string{"a_sum", "a_count"}},
		{`vector(1)`, nil},
	} {
		got, err := metricNames(tc.expr)
		require.NoError(t, err, tc.expr)
		assert.Equal(t, tc.want, got, tc.expr)
	}
	_, err := metricNames(`sum({__name__=~"tenantflow_.*"})`)
	require.ErrorContains(t, err, "__name__")
}

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"stage": ".*", "tenant": "acme"}
	got, err := substitute(`label_replace(rate(m{stage=~"$stage", tenant=~"${tenant:regex}", x="[[tenant]]"}[$__rate_interval] offset $__range), "d", "$1", "s", "(.*)")`, vars)
	require.NoError(t, err)
	assert.Equal(t, `label_replace(rate(m{stage=~".*", tenant=~"acme", x="acme"}[1m] offset 1h), "d", "$1", "s", "(.*)")`, got)
	_, err = substitute(`m{stage=~"$stages"}`, vars)
	require.ErrorContains(t, err, "$stages")
}
