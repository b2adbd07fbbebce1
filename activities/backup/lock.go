package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// lockName is the lock file in a backup's directory.
const lockName = ".lock"

// lockWait is how long an attempt waits for an earlier one that still
// holds the backup (an activity that timed out but whose worker still runs)
// before it fails and lets Temporal retry later.
const lockWait = 15 * time.Second

// lock takes the backup directory dir for this attempt alone: two attempts
// writing the same .partial file, or extracting into the same scratch
// volume, would corrupt each other. The lock dies with the process, so a
// crashed worker never leaves it behind.
func lock(ctx context.Context, dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return func() { f.Close() }, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("backup %s is in use by another attempt (lock %s held for %s)", dir, path, lockWait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
