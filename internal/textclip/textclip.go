// Package textclip bounds free text kept in states, memos and the audit
// trail.
package textclip

import "unicode/utf8"

// Clip cuts s to at most n bytes, on a rune boundary, marking the cut
// with "…" (within the n bytes).
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + "…"
}
