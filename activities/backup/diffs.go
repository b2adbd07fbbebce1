package backup

import (
	"fmt"
	"strings"
	"sync"

	"go.temporal.io/sdk/temporal"
)

// shownDiffs is how many differences a failure names: enough to point at
// the problem, few enough for a readable workflow history.
const shownDiffs = 5

// diffs collects the differences between a restored volume and its
// manifest, from both goroutines of an extraction.
type diffs struct {
	mu    sync.Mutex
	shown []string
	n     int
}

func (d *diffs) add(path, format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	if len(d.shown) < shownDiffs {
		d.shown = append(d.shown, path+": "+fmt.Sprintf(format, args...))
	}
}

// err is the non-retryable failure naming the volume and the first
// differing paths; nil when there are none.
func (d *diffs) err(vol string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == 0 {
		return nil
	}
	msg := fmt.Sprintf("volume %s does not match its backup: %d difference(s): %s", vol, d.n, strings.Join(d.shown, "; "))
	if d.n > len(d.shown) {
		msg += fmt.Sprintf("; and %d more", d.n-len(d.shown))
	}
	return temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
}
