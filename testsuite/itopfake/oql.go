package itopfake

import (
	"fmt"
	"strings"
	"unicode"
)

// oqlQuery is the only OQL the fake understands:
//
//	SELECT <Class> WHERE <field> = <literal> [AND <field> = <literal> ...]
//
// with string literals in single or double quotes (backslash escapes) or
// integers. Anything else is refused with code 100, so a client cannot pass
// its tests while relying on OQL the fake does not really evaluate.
type oqlQuery struct {
	class string
	conds []oqlCond
}

type oqlCond struct {
	field string
	value string
}

type oqlToken struct {
	kind string // ident, string, int, =, eof
	text string
}

func tokenizeOQL(q string) ([]oqlToken, error) {
	var toks []oqlToken
	r := []rune(q)
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '=':
			toks = append(toks, oqlToken{kind: "=", text: "="})
			i++
		case c == '\'' || c == '"':
			quote := c
			var b strings.Builder
			i++
			closed := false
			for i < len(r) {
				if r[i] == '\\' && i+1 < len(r) {
					b.WriteRune(r[i+1])
					i += 2
					continue
				}
				if r[i] == quote {
					closed = true
					i++
					break
				}
				b.WriteRune(r[i])
				i++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated string literal")
			}
			toks = append(toks, oqlToken{kind: "string", text: b.String()})
		case c == '-' || unicode.IsDigit(c):
			j := i + 1
			for j < len(r) && unicode.IsDigit(r[j]) {
				j++
			}
			if c == '-' && j == i+1 {
				return nil, fmt.Errorf("unexpected '-'")
			}
			toks = append(toks, oqlToken{kind: "int", text: string(r[i:j])})
			i = j
		case c == '_' || unicode.IsLetter(c):
			j := i + 1
			for j < len(r) && (r[j] == '_' || unicode.IsLetter(r[j]) || unicode.IsDigit(r[j])) {
				j++
			}
			toks = append(toks, oqlToken{kind: "ident", text: string(r[i:j])})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return append(toks, oqlToken{kind: "eof"}), nil
}

// parseOQL parses the supported subset or says why it cannot.
func parseOQL(q string) (oqlQuery, error) {
	toks, err := tokenizeOQL(q)
	if err != nil {
		return oqlQuery{}, err
	}
	pos := 0
	next := func() oqlToken { t := toks[pos]; pos++; return t }
	keyword := func(kw string) error {
		if t := next(); t.kind != "ident" || !strings.EqualFold(t.text, kw) {
			return fmt.Errorf("expected %s, found %q", kw, t.text)
		}
		return nil
	}
	var out oqlQuery
	if err := keyword("SELECT"); err != nil {
		return out, err
	}
	t := next()
	if t.kind != "ident" {
		return out, fmt.Errorf("expected a class name, found %q", t.text)
	}
	out.class = t.text
	if err := keyword("WHERE"); err != nil {
		return out, err
	}
	for {
		f := next()
		if f.kind != "ident" {
			return out, fmt.Errorf("expected an attribute code, found %q", f.text)
		}
		if op := next(); op.kind != "=" {
			return out, fmt.Errorf("only '=' is supported, found %q", op.text)
		}
		v := next()
		if v.kind != "string" && v.kind != "int" {
			return out, fmt.Errorf("expected a literal after %s =, found %q", f.text, v.text)
		}
		out.conds = append(out.conds, oqlCond{field: f.text, value: v.text})
		t := next()
		if t.kind == "eof" {
			return out, nil
		}
		if t.kind != "ident" || !strings.EqualFold(t.text, "AND") {
			return out, fmt.Errorf("expected AND or the end of the query, found %q", t.text)
		}
	}
}
