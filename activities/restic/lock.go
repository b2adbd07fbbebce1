package restic

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// lockPoll is how often a waiting activity tries the tenant's lock again.
const lockPoll = 200 * time.Millisecond

// lockTenant takes <Keys>/<tenant>.lock for this activity alone: every
// activity that writes the tenant's repository (or removes it) holds it,
// so restic unlock never removes the lock of one of ours that still
// works, and a prune never runs under a backup. It waits as long as the
// activity may (heartbeating that it waits, so it is not taken for a lost
// worker) and gives up when ctx ends. The lock dies with the process.
func (a *Activities) lockTenant(ctx context.Context, tenant string, p *progress) (unlock func(), err error) {
	path := filepath.Join(a.Config.Keys, tenant+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock of tenant %s: %w", tenant, err)
	}
	label := p.current()
	defer p.stage(label)
	waiting := false
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return func() { f.Close() }, nil
		}
		if !waiting {
			waiting = true
			p.stage(label + ": waiting for another activity on the repository of " + tenant)
			a.log().Info("waiting for the tenant's repository", "tenant", tenant, "lock", path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the lock of tenant %s: %w", tenant, context.Cause(ctx))
		case <-time.After(lockPoll):
		}
	}
}
