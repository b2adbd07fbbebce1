package restic_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// crashRootEnv makes TestCrashChild run: the worker that is killed.
const crashRootEnv = "TENANTFLOW_RESTIC_CRASH_ROOT"

var crashInput = restic.BackupInput{Tenant: "initech", ID: "nightly", Volumes: []string{"data"}}

// TestCrashChild is the worker TestKilledWorker kills mid-backup; it
// runs only as that test's child process.
func TestCrashChild(t *testing.T) {
	root := os.Getenv(crashRootEnv)
	if root == "" {
		t.Skip("the child of TestKilledWorker")
	}
	e := newEnv(t, root, nil)
	_, err := e.a.TakeBackup(context.Background(), crashInput)
	t.Fatalf("the backup was to be killed, but it ended: %v", err)
}

// A worker killed (SIGKILL) in the middle of a backup takes its restic
// with it, and leaves a repository that the retry on another worker uses
// as if nothing happened: it removes the stale lock, takes the backup,
// and restic check finds nothing wrong.
func TestKilledWorker(t *testing.T) {
	t.Parallel()
	harness.RequireBinary(t, "restic", "restic")
	root := t.TempDir()
	data := filepath.Join(root, "host", "volumes", crashInput.Tenant, "data")
	writeRandom(t, filepath.Join(data, "big.bin"), 200<<20, 7)
	writeFile(t, filepath.Join(data, "small.txt"), "small\n")

	child := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	child.Env = append(os.Environ(), crashRootEnv+"="+root)
	var out harness.SyncBuffer
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { ended <- child.Wait() }()
	t.Cleanup(func() { _ = child.Process.Kill() })

	repo := filepath.Join(root, "repos", crashInput.Tenant)
	harness.WaitFor(t, "restic in the middle of the backup", time.Minute, func() error {
		select {
		case err := <-ended:
			t.Fatalf("the child ended before it was killed: %v\n%s", err, out.String())
		default:
		}
		if n := dirSize(t, filepath.Join(repo, "data")); n < 40<<20 {
			return fmt.Errorf("%d MB written", n>>20)
		}
		return nil
	})
	pids := resticsOn(t, repo)
	if len(pids) == 0 {
		t.Fatal("no restic runs on the repository")
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; err == nil {
		t.Fatal("the child ended by itself")
	}
	// At once: the kernel kills it (Pdeathsig). Without that it would
	// die too, but only at its next status line (SIGPIPE), up to a second
	// later, or once its input ends: after a truncated snapshot.
	harness.WaitFor(t, "restic to die with its worker", 500*time.Millisecond, func() error {
		for _, pid := range pids {
			if st := procState(pid); st != "" && st != "Z" && st != "X" {
				return fmt.Errorf("restic %s is in state %s", pid, st)
			}
		}
		return nil
	})
	// restic finds a lock stale once its process is gone, reaped by init
	// (which here takes a while).
	harness.WaitFor(t, "the killed restic to be reaped", 30*time.Second, func() error {
		for _, pid := range pids {
			if procState(pid) != "" {
				return fmt.Errorf("restic %s is not reaped", pid)
			}
		}
		return nil
	})
	if locks, _ := os.ReadDir(filepath.Join(repo, "locks")); len(locks) == 0 {
		t.Fatal("the killed restic left no lock: the retry's unlock goes untested")
	}

	e := newEnv(t, root, nil)
	b, err := e.a.TakeBackup(ctxFor(t), crashInput)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Parts) != 1 || b.Parts[0].Files != 2 || b.Parts[0].Bytes != 200<<20+6 {
		t.Fatalf("backup after the crash: %+v", b)
	}
	key := filepath.Join(root, "keys", crashInput.Tenant+".key")
	if out, err := resticCLI(t, repo, key, "check"); err != nil {
		t.Fatalf("restic check after the crash and the retry: %v\n%s", err, out)
	}
}

// resticsOn lists the processes whose RESTIC_REPOSITORY is repo.
func resticsOn(t *testing.T, repo string) []string {
	t.Helper()
	procs, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("\x00RESTIC_REPOSITORY=" + repo + "\x00")
	var pids []string
	for _, p := range procs {
		if strings.Trim(p.Name(), "0123456789") != "" {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", p.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(append([]byte{0}, env...), want) {
			pids = append(pids, p.Name())
		}
	}
	return pids
}

// procState is the state of the process (R, S, Z, ...); "" when it is
// gone.
func procState(pid string) string {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return ""
	}
	// pid (comm) state ...: comm may hold spaces, so after the last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}
