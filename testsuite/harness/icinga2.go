package harness

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Icinga2 is an Icinga 2 daemon with its REST API on loopback, started for
// one test with everything (CA, certificates, state) under a temp dir.
type Icinga2 struct {
	URL      string // https://localhost:<port>; the certificate is for localhost
	User     string // ApiUser with permissions "*"
	Password string
	CAFile   string // PEM of the Icinga CA that signed the API certificate
	Process  *Process
	http     *http.Client
}

// Icinga2HostTemplate is a host template the test instance defines, for
// TENANTFLOW_SUPERVISION_ICINGA2_HOST_TEMPLATE.
const Icinga2HostTemplate = "tenantflow-tenant"

// icinga2Conf is a minimal single-node configuration: checker, API listener,
// one API user, a host template, and the ITL with the plugin commands
// (dummy, http).
const icinga2Conf = `const PluginDir = "/usr/lib/nagios/plugins"
const NodeName = "localhost"
const ZoneName = "master"
const TicketSalt = ""
include <itl>
include <plugins>
object FileLogger "main-log" { severity = "information"; path = LogDir + "/icinga2.log" }
object CheckerComponent "checker" {}
object Endpoint NodeName {}
object Zone ZoneName { endpoints = [ NodeName ] }
object ApiListener "api" { bind_host = "127.0.0.1"; bind_port = %d }
object ApiUser %q { password = %q; permissions = [ "*" ] }
template Host "` + Icinga2HostTemplate + `" { vars.notify = true }
`

// StartIcinga2 creates a CA and the API certificate (a few seconds), starts
// `icinga2 daemon` in the foreground and waits until the API answers.
func StartIcinga2(t testing.TB) *Icinga2 {
	t.Helper()
	SkipShort(t, "Icinga 2")
	bin := RequireBinary(t, "icinga2", "icinga2")
	RequireBinary(t, "/usr/lib/nagios/plugins/check_http", "monitoring-plugins-basic")
	dir := t.TempDir()
	for _, d := range []string{"etc", "data/certs", "log", "cache", "spool", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	defs := []string{
		"-DDataDir=" + filepath.Join(dir, "data"), "-DLogDir=" + filepath.Join(dir, "log"),
		"-DCacheDir=" + filepath.Join(dir, "cache"), "-DSpoolDir=" + filepath.Join(dir, "spool"),
		"-DInitRunDir=" + filepath.Join(dir, "run"), "-DPidPath=" + filepath.Join(dir, "run", "icinga2.pid"),
	}
	// Without these Icinga setuid()s to the packaged 'nagios' user, which
	// cannot write the temp dir.
	env := append(os.Environ(), "ICINGA2_USER="+currentUser(t), "ICINGA2_GROUP="+currentGroup(t))

	certs := filepath.Join(dir, "data", "certs")
	pki := func(args ...string) {
		cmd := exec.Command(bin, append(append([]string{"pki"}, args...), defs...)...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("icinga2 pki %v: %v\n%s", args, err, out)
		}
	}
	pki("new-ca")
	pki("new-cert", "--cn", "localhost", "--key", filepath.Join(certs, "localhost.key"), "--csr", filepath.Join(certs, "localhost.csr"))
	pki("sign-csr", "--csr", filepath.Join(certs, "localhost.csr"), "--cert", filepath.Join(certs, "localhost.crt"))
	ca := filepath.Join(certs, "ca.crt")
	copyFile(t, filepath.Join(dir, "data", "ca", "ca.crt"), ca)

	port := FreePort(t)
	var pw [12]byte
	rand.Read(pw[:])
	i := &Icinga2{URL: "https://localhost:" + strconv.Itoa(port), User: "tenantflow", Password: hex.EncodeToString(pw[:]), CAFile: ca}
	conf := filepath.Join(dir, "etc", "icinga2.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(icinga2Conf, port, i.User, i.Password)), 0o600); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	i.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	i.Process = NewProcess(t, dir, env, bin, append([]string{"daemon", "-c", conf}, defs...)...)
	i.Process.Start()
	i.WaitReady(t)
	return i
}

// WaitReady waits until the API answers an authenticated request.
func (i *Icinga2) WaitReady(t testing.TB) {
	t.Helper()
	WaitFor(t, "icinga2 API", 90*time.Second, func() error {
		status, body, err := i.Do(http.MethodGet, "/v1/status/IcingaApplication", nil)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("status %d: %.200s", status, body)
		}
		return err
	})
}

// Do sends one API request as the admin user (for assertions made
// through the server itself).
func (i *Icinga2) Do(method, path string, body any) (int, []byte, error) {
	return DoJSON(i.http, method, i.URL+path, body, 5*time.Second, func(req *http.Request) {
		req.SetBasicAuth(i.User, i.Password)
		req.Header.Set("Accept", "application/json")
	})
}

func currentUser(t testing.TB) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

func currentGroup(t testing.TB) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return g.Name
}
