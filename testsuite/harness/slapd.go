package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Slapd is a throwaway OpenLDAP server for one test: cn=config built with
// slapadd, one mdb database on disk (so data survives Stop/Start, for outage
// tests), plain LDAP and LDAPS on loopback with a certificate from a CA made
// for this test, and the suffix entry already added.
type Slapd struct {
	URL          string // ldap://127.0.0.1:<port> (StartTLS available)
	LDAPSURL     string // ldaps://127.0.0.1:<port>
	CAFile       string // PEM of the CA that signed the server certificate
	Suffix       string // dc=example,dc=org
	RootDN       string // cn=admin,dc=example,dc=org
	RootPassword string
	Dir          string
	Process      *Process
	t            testing.TB
}

// StartSlapd configures and starts slapd in t.TempDir() and stops it when
// the test ends. It follows /work/shared/recipes/1-slapd.sh, except that
// slapd keeps the test's user (no -u/-g: the temp dir is private to it).
func StartSlapd(t testing.TB) *Slapd {
	t.Helper()
	SkipShort(t, "slapd")
	bin := RequireBinary(t, "slapd", "slapd")
	slapadd := RequireBinary(t, "slapadd", "slapd")
	dir := t.TempDir()
	s := &Slapd{
		URL:          "ldap://" + Addr(FreePort(t)),
		LDAPSURL:     "ldaps://" + Addr(FreePort(t)),
		CAFile:       filepath.Join(dir, "ca.pem"),
		Suffix:       "dc=example,dc=org",
		RootDN:       "cn=admin,dc=example,dc=org",
		RootPassword: "slapd-test-root-password",
		Dir:          dir,
		t:            t,
	}
	for _, d := range []string{"slapd.d", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeSlapdCerts(t, dir)
	ldif := filepath.Join(dir, "config.ldif")
	if err := os.WriteFile(ldif, []byte(slapdConfig(dir, s)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(slapadd, "-n0", "-F", filepath.Join(dir, "slapd.d"), "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd cn=config: %v\n%s", err, out)
	}
	s.Process = NewProcess(t, dir, nil, bin,
		"-F", filepath.Join(dir, "slapd.d"), "-h", s.URL+"/ "+s.LDAPSURL+"/", "-d", "0")
	s.Start()
	conn := s.Conn(t)
	if err := conn.Add(&ldap.AddRequest{DN: s.Suffix, Attributes: []ldap.Attribute{
		{Type: "objectClass", Vals: []string{"dcObject", "organization"}},
		{Type: "o", Vals: []string{"Example"}},
		{Type: "dc", Vals: []string{"example"}},
	}}); err != nil {
		t.Fatalf("add %s: %v", s.Suffix, err)
	}
	return s
}

// Start runs slapd (again) and waits until the root DN can bind.
func (s *Slapd) Start() {
	s.t.Helper()
	s.Process.Start()
	WaitFor(s.t, "slapd", 15*time.Second, func() error {
		c, err := s.dial()
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// Stop terminates slapd; the database stays on disk for the next Start.
func (s *Slapd) Stop() { s.Process.Stop() }

// Conn is a fresh connection bound as the root DN (which bypasses ACLs, so
// tests can read userPassword), closed when the test ends.
func (s *Slapd) Conn(t testing.TB) *ldap.Conn {
	t.Helper()
	c, err := s.dial()
	if err != nil {
		t.Fatalf("slapd root connection: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// AddOU adds an organizationalUnit (e.g. the tenants container).
func (s *Slapd) AddOU(t testing.TB, dn string) {
	t.Helper()
	rdn, err := ldap.ParseDN(dn)
	if err != nil || len(rdn.RDNs) == 0 {
		t.Fatalf("parse %q: %v", dn, err)
	}
	c := s.Conn(t)
	if err := c.Add(&ldap.AddRequest{DN: dn, Attributes: []ldap.Attribute{
		{Type: "objectClass", Vals: []string{"organizationalUnit"}},
		{Type: "ou", Vals: []string{rdn.RDNs[0].Attributes[0].Value}},
	}}); err != nil {
		t.Fatalf("add %s: %v", dn, err)
	}
}

func (s *Slapd) dial() (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(5 * time.Second)
	if err := c.Bind(s.RootDN, s.RootPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func slapdConfig(dir string, s *Slapd) string {
	return strings.NewReplacer("$D", dir, "$SUFFIX", s.Suffix, "$ROOTDN", s.RootDN, "$ROOTPW", s.RootPassword).Replace(`dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $D/slapd.pid
olcTLSCACertificateFile: $D/ca.pem
olcTLSCertificateFile: $D/server.pem
olcTLSCertificateKeyFile: $D/server.key

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $SUFFIX
olcRootDN: $ROOTDN
olcRootPW: $ROOTPW
olcDbDirectory: $D/data
olcDbMaxSize: 104857600
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by * read
`)
}

// writeSlapdCerts makes a CA (ca.pem) and a server certificate for
// 127.0.0.1/localhost signed by it (server.pem, server.key).
func writeSlapdCerts(t testing.TB, dir string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tenantflow test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*pem.Block{
		"ca.pem":     {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem": {Type: "CERTIFICATE", Bytes: der},
		"server.key": {Type: "PRIVATE KEY", Bytes: keyDER},
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(fmt.Errorf("write %s: %w", name, err))
		}
	}
}
