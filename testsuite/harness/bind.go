package harness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// Bind is a throwaway BIND9 primary for one zone on loopback that accepts
// RFC 2136 updates signed with a TSIG key (hmac-sha256). Its zone file and
// journal live in Dir, so Stop and Start keep the records: an outage, not
// a new server.
type Bind struct {
	Addr         string // 127.0.0.1:<port>, UDP and TCP
	Port         int
	Zone         string // without trailing dot, e.g. "apps.example.test"
	KeyName      string
	KeySecret    string // base64
	KeyAlgorithm string // "hmac-sha256"
	Dir          string

	t     testing.TB
	proc  *Process
	zones []string
}

// Add writes records (in zone file syntax, e.g. "crm.customer.test. 60 IN
// A 127.0.0.1") with a signed RFC 2136 update, as a customer's DNS
// provider would; each goes to the zone its name is in.
func (b *Bind) Add(t testing.TB, records ...string) {
	t.Helper()
	for _, rec := range records {
		rr, err := mdns.NewRR(rec)
		if err != nil {
			t.Fatalf("record %q: %v", rec, err)
		}
		zone := ""
		for _, z := range b.zones {
			if mdns.IsSubDomain(mdns.Fqdn(z), rr.Header().Name) && len(z) > len(zone) {
				zone = z
			}
		}
		if zone == "" {
			t.Fatalf("record %q is in none of the zones %v", rec, b.zones)
		}
		m := new(mdns.Msg)
		m.SetUpdate(mdns.Fqdn(zone))
		m.Insert([]mdns.RR{rr})
		m.SetTsig(mdns.Fqdn(b.KeyName), mdns.HmacSHA256, 300, time.Now().Unix())
		c := &mdns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{mdns.Fqdn(b.KeyName): b.KeySecret}}
		r, _, err := c.Exchange(m, b.Addr)
		if err != nil {
			t.Fatalf("update %q: %v", rec, err)
		}
		if r.Rcode != mdns.RcodeSuccess {
			t.Fatalf("update %q: %s", rec, mdns.RcodeToString[r.Rcode])
		}
	}
}

// StartBind runs `named -g` (foreground, root is fine, no rndc) with zone
// as a primary zone updatable with the key, waits until the zone answers
// and stops it when the test ends.
//
// Extra zones (a customer's domain, say) are served and updatable the
// same way; Add writes records into any of them.
func StartBind(t testing.TB, zone string, extra ...string) *Bind {
	t.Helper()
	SkipShort(t, "BIND")
	named := RequireBinary(t, "named", "bind9")
	zone = strings.TrimSuffix(zone, ".")
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	b := &Bind{
		Port: FreePort(t), Zone: zone, Dir: t.TempDir(), t: t,
		KeyName: "tenantflow-key", KeySecret: base64.StdEncoding.EncodeToString(key), KeyAlgorithm: "hmac-sha256",
	}
	b.Addr = Addr(b.Port)
	conf := fmt.Sprintf(`options {
  directory "%[1]s";
  pid-file "%[1]s/named.pid";
  session-keyfile "%[1]s/session.key";
  listen-on port %[2]d { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  allow-query { any; };
  allow-transfer { none; };
  dnssec-validation no;
  notify no;
};
controls { };
key "%[4]s" { algorithm %[5]s; secret "%[6]s"; };
`, b.Dir, b.Port, zone, b.KeyName, b.KeyAlgorithm, b.KeySecret)
	files := map[string]string{}
	b.zones = append([]string{zone}, extra...)
	for _, z := range b.zones {
		z = strings.TrimSuffix(z, ".")
		conf += fmt.Sprintf(`zone "%[2]s" {
  type primary;
  file "%[1]s/%[2]s.db";
  allow-update { key %[3]s; };
};
`, b.Dir, z, b.KeyName)
		files[z+".db"] = fmt.Sprintf(`$TTL 60
@   IN SOA ns1.%[1]s. hostmaster.%[1]s. ( 1 60 60 3600 60 )
@   IN NS  ns1.%[1]s.
ns1 IN A   127.0.0.1
`, z)
	}
	files["named.conf"] = conf
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(b.Dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// -g: foreground, logs to stderr, no setuid; -4: loopback IPv4 only;
	// -n 1: one worker thread, the CI machine is small.
	b.proc = NewProcess(t, b.Dir, nil, named, "-g", "-4", "-n", "1", "-c", filepath.Join(b.Dir, "named.conf"))
	b.Start()
	return b
}

// Start runs named (again) on the same directory and port and waits until
// it answers authoritatively for the zone.
func (b *Bind) Start() {
	b.t.Helper()
	b.proc.Start()
	WaitFor(b.t, "named "+b.Addr, 30*time.Second, b.ready)
}

// Stop terminates named; the zone and its journal stay in Dir.
func (b *Bind) Stop() { b.proc.Stop() }

// Output is what named logged so far.
func (b *Bind) Output() string { return b.proc.Output() }

func (b *Bind) ready() error {
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(b.Zone), mdns.TypeSOA)
	c := &mdns.Client{Timeout: 500 * time.Millisecond}
	r, _, err := c.Exchange(m, b.Addr)
	if err != nil {
		return err
	}
	if r.Rcode != mdns.RcodeSuccess || !r.Authoritative || len(r.Answer) == 0 {
		return fmt.Errorf("SOA %s: %s, authoritative=%t", b.Zone, mdns.RcodeToString[r.Rcode], r.Authoritative)
	}
	return nil
}

// Dig runs the dig client against this server (`dig @127.0.0.1 -p <port>
// args…`) and returns its output: tests check records through a real
// resolver tool, not only through the code under test.
func (b *Bind) Dig(t testing.TB, args ...string) string {
	t.Helper()
	dig := RequireBinary(t, "dig", "bind9-dnsutils")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args = append([]string{"@127.0.0.1", "-p", strconv.Itoa(b.Port), "+time=2", "+tries=1"}, args...)
	out, err := exec.CommandContext(ctx, dig, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("dig %s: %v\n%s%s", strings.Join(args, " "), err, out, ee.Stderr)
		}
		t.Fatalf("dig %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// DigShort is `dig … name type +short`, one value per line.
func (b *Bind) DigShort(t testing.TB, name, qtype string) []string {
	t.Helper()
	out := strings.TrimSpace(b.Dig(t, name, qtype, "+short"))
	if out == "" {
		return []string{}
	}
	return strings.Split(out, "\n")
}

// DigStatus is the response status dig reports for the query (NOERROR,
// NXDOMAIN, …).
func (b *Bind) DigStatus(t testing.TB, name, qtype string) string {
	t.Helper()
	out := b.Dig(t, name, qtype, "+noall", "+comments")
	_, rest, ok := strings.Cut(out, "status: ")
	if !ok {
		t.Fatalf("dig %s %s: no status in output:\n%s", name, qtype, out)
	}
	status, _, _ := strings.Cut(rest, ",")
	return status
}
