package cli

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// printJSON writes the API's answer as it came.
func printJSON(w io.Writer, body []byte) error {
	if _, err := w.Write(body); err != nil {
		return err
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		_, err := io.WriteString(w, "\n")
		return err
	}
	return nil
}

// table writes rows under header, in aligned columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	printLine(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			if r[i] == "" {
				r[i] = "-"
			}
		}
		printLine(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields writes "key:  value" lines, leaving out empty values.
func fields(w io.Writer, kv ...[2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range kv {
		if f[1] != "" {
			printf(tw, "%s:\t%s\n", f[0], f[1])
		}
	}
	return tw.Flush()
}

// shortImage cuts an image's digest to 12 hex characters for a table
// (-o json shows it whole).
func shortImage(image string) string {
	name, digest, ok := strings.Cut(image, "@sha256:")
	if !ok || len(digest) <= 12 {
		return image
	}
	return name + "@sha256:" + digest[:12]
}

// age is how long ago t was, in the largest unit that fits ("42s",
// "5m", "3h", "12d"); "-" for a zero time.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// when formats an optional time for a person (UTC, to the second).
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// progressText is "3/5 StartService" ("" when there is nothing to show).
func progressText(p progressView) string {
	if p.Total == 0 && p.Step == "" {
		return ""
	}
	s := fmt.Sprintf("%d/%d", p.Done, p.Total)
	if p.Step != "" {
		s += " " + p.Step
	}
	return s
}

// printf and printLine write to the terminal or a pipe. A failed write
// there cannot be reported anywhere else (and a closed pipe ends the
// process with SIGPIPE), so it is dropped.
func printf(w io.Writer, format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }

func printLine(w io.Writer, args ...any) { _, _ = fmt.Fprintln(w, args...) }

// present prints an API answer: as it is with -o json, else decoded into T
// and shown by show.
func present[T any](a *app, resp *Response, show func(T) error) error {
	if a.json() {
		return printJSON(a.io.Out, resp.Body)
	}
	var v T
	if err := resp.Decode(&v); err != nil {
		return err
	}
	return show(v)
}

// pager is the --page-size and --page-token flags of an ls command.
type pager struct {
	size  int
	token string
}

func (p *pager) flags(cmd *cobra.Command, noun, sizeHelp string) {
	cmd.Flags().IntVar(&p.size, "page-size", 0, noun+" per page ("+sizeHelp+")")
	cmd.Flags().StringVar(&p.token, "page-token", "", "the next page, as the previous one named it")
}

// query adds the page asked for to q.
func (p *pager) query(q url.Values) url.Values { return p.queryAs(q, "pageSize", "pageToken") }

// queryAs adds the page asked for to q under a route's own parameter
// names (GET /v1/audit: limit and after).
func (p *pager) queryAs(q url.Values, size, token string) url.Values {
	if p.token != "" {
		q.Set(token, p.token)
	}
	if p.size > 0 {
		q.Set(size, strconv.Itoa(p.size))
	}
	return q
}

// page is an answer of a paged list.
type page interface{ nextPage() string }

func (l tenantList) nextPage() string  { return l.NextPageToken }
func (l releaseList) nextPage() string { return l.NextPageToken }
func (l auditPage) nextPage() string   { return l.Next }

// presentPage prints a page of a list: the API's answer with -o json, else
// rows under header, and on stderr how to ask for the next page (command
// is the ls command, e.g. "tenants ls").
func presentPage[L page](a *app, resp *Response, command string, header []string, rows func(L) [][]string) error {
	return present(a, resp, func(l L) error {
		if err := table(a.io.Out, header, rows(l)); err != nil {
			return err
		}
		if next := l.nextPage(); next != "" {
			printf(a.io.Err, "more: tenantflow %s --page-token %s\n", command, next)
		}
		return nil
	})
}
