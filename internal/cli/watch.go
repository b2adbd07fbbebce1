package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// frame is what a watch shows of an operation at one poll: a title, a
// progress bar, a summary line and one item per part (a release's
// tenants, a build's step). end is set once the operation is over, or
// waits for a person.
type frame struct {
	title       string
	done, total int
	step        string
	summary     string
	items       []item
	end         *ending
	raw         []byte // the API's answer (-o json)
}

// item is one line of a frame; key names what it is about, so a plain
// watch prints it again only when its text changes. rank orders what a
// terminal shows first when not every item fits (lower first).
type item struct {
	key, text string
	rank      int
}

// ending says how the watched operation ended: ok decides the exit code.
type ending struct {
	ok  bool
	msg string
}

// poll reads the operation once and describes it.
type poll func(ctx context.Context) (frame, error)

// giveUpAfter is how long a watch goes on through failing polls (the API
// restarting, a worker busy) before it fails.
const giveUpAfter = time.Minute

// watch polls every pollEvery and shows each frame until one ends the
// operation: a redrawn display on a terminal, a line per change
// otherwise, or each new answer with -o json.
func (a *app) watch(ctx context.Context, p poll) error {
	r := a.renderer()
	defer r.close()
	var failingSince time.Time
	for {
		f, err := p(ctx)
		switch {
		case err == nil:
			failingSince = time.Time{}
			r.draw(f)
			if f.end != nil {
				r.finish(f)
				if !f.end.ok {
					return unsuccessful()
				}
				return nil
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case permanent(err):
			return err
		default:
			if failingSince.IsZero() {
				failingSince = a.now()
			}
			if a.now().Sub(failingSince) > giveUpAfter {
				return fmt.Errorf("gave up after %s of failing polls: %w", giveUpAfter, err)
			}
			r.problem(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(a.pollEvery):
		}
	}
}

// permanent tells an error a later poll would get again (not found,
// denied, bad input): the watch stops at once.
func permanent(err error) bool {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
		return true
	}
	return false
}

type renderer interface {
	draw(f frame)
	problem(err error)
	finish(f frame)
	close()
}

func (a *app) renderer() renderer {
	switch {
	case a.json():
		return &jsonLines{w: a.io.Out, notes: a.io.Err}
	case a.io.TTY:
		return &display{w: a.io.Out, size: a.io.Size}
	default:
		return &plainLines{w: a.io.Out, seen: map[string]string{}}
	}
}

// plainLines prints a line for each change: the title (with its progress)
// when it changes, an item when its text does, and how it ended. For logs
// and scripts: nothing is redrawn.
type plainLines struct {
	w     io.Writer
	title string
	seen  map[string]string
	note  string
}

func (p *plainLines) draw(f frame) {
	p.note = ""
	if t := plainTitle(f); t != p.title {
		printLine(p.w, t)
		p.title = t
	}
	for _, it := range f.items {
		if p.seen[it.key] != it.text {
			printLine(p.w, strings.TrimRight(it.text, " "))
			p.seen[it.key] = it.text
		}
	}
}

func plainTitle(f frame) string {
	t := f.title
	if f.total > 0 {
		t += fmt.Sprintf(" [%d/%d]", f.done, f.total)
	}
	return t
}

func (p *plainLines) problem(err error) {
	if msg := err.Error(); msg != p.note {
		printf(p.w, "note: %s (still watching)\n", msg)
		p.note = msg
	}
}

func (p *plainLines) finish(f frame) {
	if f.summary != "" {
		printLine(p.w, f.summary)
	}
	printLine(p.w, f.end.msg)
}

func (p *plainLines) close() {}

// jsonLines prints each new answer of the API on a line of its own.
type jsonLines struct {
	w, notes io.Writer
	last     []byte
}

func (j *jsonLines) draw(f frame) {
	if bytes.Equal(f.raw, j.last) {
		return
	}
	j.last = f.raw
	_ = printJSON(j.w, bytes.TrimSpace(f.raw))
}

func (j *jsonLines) problem(err error) { printf(j.notes, "note: %v (still watching)\n", err) }
func (j *jsonLines) finish(f frame)    { printLine(j.notes, f.end.msg) }
func (j *jsonLines) close()            {}

// display redraws the frame in place on a terminal: title, a progress
// bar, the summary and as many items as the terminal's height allows,
// each cut to its width so that no line wraps (a wrapped line would throw
// the redraw off).
type display struct {
	w      io.Writer
	size   func() (int, int)
	drawn  int // lines of the last drawing
	last   frame
	note   string
	hidden bool
}

const (
	hideCursor = "\x1b[?25l"
	showCursor = "\x1b[?25h"
	barWidth   = 30
)

func (d *display) draw(f frame) {
	d.last, d.note = f, ""
	d.render()
}

func (d *display) problem(err error) {
	d.note = "note: " + err.Error() + " (still watching)"
	d.render()
}

func (d *display) finish(f frame) {
	printLine(d.w, f.end.msg)
}

func (d *display) close() {
	if d.hidden {
		_, _ = io.WriteString(d.w, showCursor)
	}
}

func (d *display) render() {
	width, height := d.size()
	if width <= 0 {
		width = 100
	}
	if height <= 0 {
		height = 24
	}
	lines := d.lines(height)
	var b strings.Builder
	if !d.hidden {
		b.WriteString(hideCursor)
		d.hidden = true
	}
	if d.drawn > 0 {
		printf(&b, "\x1b[%dA\r\x1b[J", d.drawn) // up to the first line, clear to the end
	}
	for _, l := range lines {
		b.WriteString(cut(l, width-1))
		b.WriteString("\n")
	}
	d.drawn = len(lines)
	_, _ = io.WriteString(d.w, b.String())
}

// lines is the drawing: at most height-1 lines, the items most worth
// seeing first when not all fit.
func (d *display) lines(height int) []string {
	f := d.last
	out := []string{f.title}
	if f.total > 0 || f.step != "" {
		out = append(out, bar(f.done, f.total, f.step))
	}
	if f.summary != "" {
		out = append(out, f.summary)
	}
	if d.note != "" {
		out = append(out, d.note)
	}
	room := height - 1 - len(out) // the line below keeps the cursor
	items := f.items
	if len(items) > room && room > 0 {
		byRank := slices.Clone(items)
		slices.SortStableFunc(byRank, func(a, b item) int { return a.rank - b.rank })
		shown := byRank[:room-1]
		items = slices.DeleteFunc(slices.Clone(items), func(it item) bool { return !slices.ContainsFunc(shown, func(s item) bool { return s.key == it.key }) })
		out = append(out, textOf(items)...)
		return append(out, fmt.Sprintf("… and %d more", len(f.items)-len(items)))
	}
	if room <= 0 {
		return out
	}
	return append(out, textOf(items)...)
}

func textOf(items []item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.text
	}
	return out
}

// bar is "████████░░░░░░ 3/10  30%  step".
func bar(done, total int, step string) string {
	var b strings.Builder
	if total > 0 {
		filled := min(barWidth, barWidth*done/total)
		b.WriteString(strings.Repeat("█", filled))
		b.WriteString(strings.Repeat("░", barWidth-filled))
		printf(&b, " %d/%d %3d%%", done, total, 100*done/total)
	}
	if step != "" {
		if b.Len() > 0 {
			b.WriteString("  ")
		}
		b.WriteString(step)
	}
	return b.String()
}

// cut shortens s to n characters (runes), marking the cut.
func cut(s string, n int) string {
	s = strings.TrimRight(s, " ")
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
