package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Pebble is a real ACME server (Debian's pebble, Let's Encrypt's test CA)
// run for one test on loopback. It resolves the names it validates with
// the test's BIND and checks TLS-ALPN-01 challenges on TLSPort, where the
// test's Caddy serves HTTPS; its HTTP-01 port is a free one nobody serves.
type Pebble struct {
	// DirectoryURL is the ACME directory, https://127.0.0.1:<port>/dir.
	DirectoryURL string
	// ServerCA is a PEM file of the CA that signed Pebble's own HTTPS
	// certificate: what an ACME client must trust to talk to it.
	ServerCA string
	// Roots is a PEM file of the root that signs the certificates Pebble
	// issues (made anew at each start): what a client trusts to check them.
	Roots string

	mgmt string
	dir  string
	t    testing.TB
}

// StartPebble runs pebble with dns (host:port) as its resolver and tlsPort
// as the port it validates TLS-ALPN-01 challenges on.
func StartPebble(t testing.TB, dns string, tlsPort int) *Pebble {
	t.Helper()
	SkipShort(t, "Pebble")
	bin := RequireBinary(t, "pebble", "pebble")
	dir := t.TempDir()
	p := &Pebble{dir: dir, t: t, ServerCA: filepath.Join(dir, "server-ca.pem"), Roots: filepath.Join(dir, "roots.pem")}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeServerCert(t, p.ServerCA, certFile, keyFile)
	listen, mgmt := Addr(FreePort(t)), Addr(FreePort(t))
	p.DirectoryURL, p.mgmt = "https://"+listen+"/dir", "https://"+mgmt
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": FreePort(t), "tlsPort": tlsPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
	}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// No random sleeps before validating, no nonces refused at random:
	// the test measures issuance, not Pebble's chaos.
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PATH=" + os.Getenv("PATH")}
	proc := NewProcess(t, dir, env, bin, "-config", conf, "-dnsserver", dns)
	proc.Start()
	client := p.client()
	WaitFor(t, "pebble directory", 30*time.Second, func() error {
		resp, err := client.Get(p.DirectoryURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d", p.DirectoryURL, resp.StatusCode)
		}
		return nil
	})
	resp, err := client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	root, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: %d %v", resp.StatusCode, err)
	}
	if err := os.WriteFile(p.Roots, root, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// client trusts Pebble's own HTTPS certificate.
func (p *Pebble) client() *http.Client {
	pem, err := os.ReadFile(p.ServerCA)
	if err != nil {
		p.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// RootPool is the pool of Pebble's issuing root.
func (p *Pebble) RootPool() *x509.CertPool {
	b, err := os.ReadFile(p.Roots)
	if err != nil {
		p.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		p.t.Fatalf("%s holds no certificate", p.Roots)
	}
	return pool
}

// writeServerCert makes a CA and a certificate it signs for 127.0.0.1 and
// localhost, for Pebble's own listeners.
func writeServerCert(t testing.TB, caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tenantflow test pebble CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost", "pebble"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{
		caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// CaddyACME is what StartCaddyTLS gives Caddy's ACME issuer.
type CaddyACME struct {
	DirectoryURL string // the ACME directory
	ServerCA     string // PEM file Caddy trusts to talk to it
}

// ACME is the issuer settings for a Caddy that gets its certificates here.
func (p *Pebble) ACME() CaddyACME {
	return CaddyACME{DirectoryURL: p.DirectoryURL, ServerCA: p.ServerCA}
}
