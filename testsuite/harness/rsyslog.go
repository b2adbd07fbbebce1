package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Rsyslog is a real syslog receiver (Debian's rsyslog) run for one test:
// it takes syslog over UDP on Addr and writes each message to File as
// "<APP-NAME> <MSG>", one per line.
type Rsyslog struct {
	Addr string // 127.0.0.1:<port>, UDP
	File string
	proc *Process
}

// StartRsyslog starts rsyslogd in the foreground with a config of its own
// (no system inputs, a work directory in the test's) and waits until it
// takes messages.
func StartRsyslog(t testing.TB) *Rsyslog {
	t.Helper()
	SkipShort(t, "rsyslog")
	bin := RequireBinary(t, "rsyslogd", "rsyslog")
	dir := t.TempDir()
	port := FreeUDPPort(t)
	r := &Rsyslog{Addr: fmt.Sprintf("127.0.0.1:%d", port), File: filepath.Join(dir, "received.log")}
	conf := fmt.Sprintf(`global(workDirectory="%[1]s")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="%[2]d")
template(name="tagged" type="string" string="%%app-name%% %%msg%%\n")
*.* action(type="omfile" file="%[3]s" template="tagged" flushOnTXEnd="on" asyncWriting="off")
`, dir, port, r.File)
	file := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.proc = NewProcess(t, dir, nil, bin, "-n", "-f", file, "-i", filepath.Join(dir, "rsyslogd.pid"))
	r.proc.Start()
	WaitFor(t, "rsyslog taking messages", 30*time.Second, func() error {
		if err := sendSyslog(r.Addr, "harness-ready", "ready"); err != nil {
			return err
		}
		if !strings.Contains(r.Received(), "harness-ready ready") {
			return fmt.Errorf("nothing received yet")
		}
		return nil
	})
	return r
}

// Received is what the receiver wrote so far.
func (r *Rsyslog) Received() string {
	b, _ := os.ReadFile(r.File)
	return string(b)
}

// Lines are the received messages whose tag is tag.
func (r *Rsyslog) Lines(tag string) []string {
	var out []string
	for _, l := range strings.Split(r.Received(), "\n") {
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// FreeUDPPort is a UDP port on 127.0.0.1 nobody listens on now.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// sendSyslog sends one RFC 5424 message with APP-NAME tag over UDP.
func sendSyslog(addr, tag, msg string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = fmt.Fprintf(c, "<30>1 %s harness %s - - - %s", time.Now().UTC().Format(time.RFC3339Nano), tag, msg)
	return err
}
