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
// crashed worker never leaves it behind. After wait it fails retryably.
func lock(ctx context.Context, dir string, wait time.Duration) (unlock func(), err error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
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
			return nil, fmt.Errorf("backup %s is in use by another attempt (lock %s held for %s)", dir, path, wait)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lockBackup takes the backup's lock for this attempt. Every activity that
// writes the backup or the tenant's data holds it: a retry that starts
// while the attempt it replaces still runs (its worker lost touch with
// Temporal, say) waits, and fails retryably after lockWait, instead of
// running the same restore twice at once. The wait shows in the progress
// the activity heartbeats, so it is not taken for a lost worker.
func (a *Activities) lockBackup(ctx context.Context, dir string, p *progress) (unlock func(), err error) {
	if p != nil {
		label, total := p.current()
		p.stage("waiting for another attempt to release the backup", 0)
		defer p.stage(label, total)
	}
	wait := a.lockWait
	if wait <= 0 {
		wait = lockWait
	}
	return lock(ctx, dir, wait)
}

// held is a backup an attempt holds: its manifest loaded, its lock taken
// and its progress heartbeated until release.
type held struct {
	dir     string
	m       Manifest
	p       *progress
	release func()
}

// hold checks ref, loads the backup's manifest, starts heartbeating (what
// labels the progress) and takes the backup's lock.
func (a *Activities) hold(ctx context.Context, ref BackupRef, what string) (*held, error) {
	if err := ref.validate(true); err != nil {
		return nil, err
	}
	dir := a.location(ref.Tenant, ref.ID)
	m, err := a.loadManifest(dir, ref)
	if err != nil {
		return nil, err
	}
	p, stop := a.track(ctx, what+" "+ref.ID)
	unlock, err := a.lockBackup(ctx, dir, p)
	if err != nil {
		stop()
		return nil, err
	}
	return &held{dir: dir, m: m, p: p, release: func() { unlock(); stop() }}, nil
}
