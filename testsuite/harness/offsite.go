package harness

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// Offsite is an off-site backup server run for one test: restic's REST
// protocol served by `rclone serve restic --append-only --private-repos`
// (Debian's rclone) on loopback, storing into Dir. User may add to the
// repositories under /<User>/ and delete nothing.
type Offsite struct {
	URL      string // http://127.0.0.1:<port>/
	User     string
	Password string
	Dir      string
	proc     *Process
	// PruneURL and PrunePassword are the pruner's server over the same
	// storage (StartPruning): it deletes, for the same User.
	PruneURL      string
	PrunePassword string
}

// StartPruning starts the off-site pruner's server beside the workers':
// `rclone serve restic --private-repos` over Dir without --append-only,
// the same user with a password of its own.
func (o *Offsite) StartPruning(t testing.TB) {
	t.Helper()
	rclone := RequireBinary(t, "rclone", "rclone")
	port := FreePort(t)
	o.PruneURL, o.PrunePassword = fmt.Sprintf("http://%s/", Addr(port)), "prune-"+RandomHex(t, 12)
	p := NewProcess(t, "", []string{"HOME=" + t.TempDir()}, rclone, "serve", "restic",
		"--addr", Addr(port), "--private-repos", "--user", o.User, "--pass", o.PrunePassword, o.Dir)
	p.Start()
	WaitFor(t, "rclone serve restic (pruner)", 10*time.Second, DialReady(Addr(port)))
}

// StartOffsite starts the server and waits until it answers.
func StartOffsite(t testing.TB) *Offsite {
	t.Helper()
	rclone := RequireBinary(t, "rclone", "rclone")
	port := FreePort(t)
	o := &Offsite{URL: fmt.Sprintf("http://%s/", Addr(port)), User: "worker", Password: "offsite-" + RandomHex(t, 12),
		Dir: filepath.Join(t.TempDir(), "offsite")}
	o.proc = NewProcess(t, "", []string{"HOME=" + t.TempDir()}, rclone, "serve", "restic",
		"--addr", Addr(port), "--append-only", "--private-repos",
		"--user", o.User, "--pass", o.Password, o.Dir)
	o.Start(t)
	return o
}

// Start runs the server again after Stop (an outage, not a new server).
func (o *Offsite) Start(t testing.TB) {
	t.Helper()
	o.proc.Start()
	WaitFor(t, "rclone serve restic", 10*time.Second, func() error {
		resp, err := http.Get(o.URL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// Stop stops the server.
func (o *Offsite) Stop() { o.proc.Stop() }

// RepoDir is where the server stores the tenant's off-site repository
// (<tenant>-<digest of its key>; see restic.OffsiteName); "" if none.
func (o *Offsite) RepoDir(tenant string) string {
	m, _ := filepath.Glob(filepath.Join(o.Dir, o.User, tenant+"-*"))
	if len(m) != 1 {
		return ""
	}
	return m[0]
}
