package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Terminal is a real terminal a test types into, as a person would: a
// bash in a tmux session of its own (its own server socket, no user
// configuration), read back with capture-pane.
type Terminal struct {
	t       testing.TB
	tmux    string
	socket  string
	session string
	runs    int
}

// StartTerminal starts a width×height terminal running bash with env
// added to the test's environment (PATH, HOME, TENANTFLOW_* …). It skips
// without tmux unless integration tests are required.
func StartTerminal(t testing.TB, width, height int, env map[string]string) *Terminal {
	t.Helper()
	dir := t.TempDir()
	tm := &Terminal{t: t, tmux: RequireBinary(t, "tmux", "tmux"), socket: filepath.Join(dir, "tmux.sock"), session: "tenantflow"}
	// The shell's start file sets env: an interactive bash sets its own
	// prompt over the environment's, and tmux gives a new session the
	// client's PATH whatever -e says.
	var rc strings.Builder
	rc.WriteString("PS1='$ '\n")
	for k, v := range env {
		fmt.Fprintf(&rc, "export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	rcFile := filepath.Join(dir, "bashrc")
	if err := os.WriteFile(rcFile, []byte(rc.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"new-session", "-d", "-x", strconv.Itoa(width), "-y", strconv.Itoa(height), "-s", tm.session,
		"bash --noprofile --rcfile " + rcFile + " -i"}
	tm.cmd(args...)
	t.Cleanup(func() { _ = exec.Command(tm.tmux, "-S", tm.socket, "kill-server").Run() })
	return tm
}

func (tm *Terminal) cmd(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command(tm.tmux, append([]string{"-S", tm.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Screen is what the terminal shows (with what scrolled off since the
// last command started), wrapped lines joined, trailing blanks dropped.
func (tm *Terminal) Screen() string {
	tm.t.Helper()
	out := tm.cmd("capture-pane", "-p", "-J", "-S", "-", "-t", tm.session)
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

// Start clears the terminal and types line, then Enter; the shell then
// prints a marker with the command's exit status, which Wait looks for.
// It returns the run's number for Wait.
func (tm *Terminal) Start(line string) int {
	tm.t.Helper()
	tm.runs++
	tm.cmd("send-keys", "-t", tm.session, "-l", "clear")
	tm.cmd("send-keys", "-t", tm.session, "Enter")
	WaitFor(tm.t, "a cleared terminal", 10*time.Second, func() error {
		if s := strings.TrimSpace(tm.cmd("capture-pane", "-p", "-t", tm.session)); s != "$" {
			return fmt.Errorf("the screen shows %q", s)
		}
		return nil
	})
	tm.cmd("clear-history", "-t", tm.session)
	tm.cmd("send-keys", "-t", tm.session, "-l", fmt.Sprintf(`%s; echo "[run %d] exit=$?"`, line, tm.runs))
	tm.cmd("send-keys", "-t", tm.session, "Enter")
	return tm.runs
}

// Wait waits for run n to end and returns its exit status and the screen.
// Each screen read meanwhile goes to seen (nil: none), so a test can
// check what showed while the command ran.
func (tm *Terminal) Wait(n int, timeout time.Duration, seen func(screen string)) (int, string) {
	tm.t.Helper()
	done := regexp.MustCompile(fmt.Sprintf(`(?m)^\[run %d\] exit=(\d+)$`, n))
	deadline := time.Now().Add(timeout)
	for {
		screen := tm.Screen()
		if seen != nil {
			seen(screen)
		}
		if m := done.FindStringSubmatch(screen); m != nil {
			code, _ := strconv.Atoi(m[1])
			return code, screen
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("terminal: run %d did not end within %s; the screen:\n%s", n, timeout, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Run types line and waits for it to end.
func (tm *Terminal) Run(line string, timeout time.Duration) (int, string) {
	tm.t.Helper()
	return tm.Wait(tm.Start(line), timeout, nil)
}
