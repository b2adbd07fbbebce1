// Package domains checks a tenant's custom domains: that the customer
// controls the name (a TXT record they add, which names the tenant), and
// that the proxy answers on it over HTTPS with a certificate a client
// trusts. The route itself is the proxy's (proxy.RouteInput.Aliases), and
// Caddy's automatic HTTPS obtains the certificate by ACME.
package domains

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Settings.
const (
	EnvResolver = "TENANTFLOW_DOMAINS_RESOLVER"
	EnvTLSAddr  = "TENANTFLOW_DOMAINS_TLS_ADDR"
	EnvRoots    = "TENANTFLOW_DOMAINS_TLS_ROOTS"
	EnvTimeout  = "TENANTFLOW_DOMAINS_TIMEOUT"
)

// Config says how domains are checked.
type Config struct {
	// Resolver is the DNS server (host:port) asked for the challenge
	// records; empty: the system's resolver.
	Resolver string
	// TLSAddr is where the proxy serves HTTPS (host:port): the check
	// connects there with the domain as server name. Empty: the proxy
	// admin API's host, on the port of its listen address.
	TLSAddr string
	// Roots is a PEM file of the certificate authorities a client trusts
	// (empty: the system's), to check the certificate as customers will.
	Roots   string
	Timeout time.Duration
}

// Register binds the settings to flags and TENANTFLOW_DOMAINS_* variables.
func (c *Config) Register(s *config.Set) {
	s.String(&c.Resolver, "domains-resolver", EnvResolver, "", "DNS server (host:port) asked for custom domains' challenge records (default: the system's resolver)")
	s.String(&c.TLSAddr, "domains-tls-addr", EnvTLSAddr, "", "host:port where the proxy serves HTTPS, to check custom domains' certificates (default: the proxy admin host on its listen port)")
	s.String(&c.Roots, "domains-tls-roots", EnvRoots, "", "PEM file of the authorities a client trusts when the certificate is checked (default: the system's)")
	s.Duration(&c.Timeout, "domains-timeout", EnvTimeout, 10*time.Second, "timeout of one DNS query or HTTPS check")
}

// Validate reports bad settings by their variable names.
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

// check validates the settings and returns the pool of Roots (nil: the
// system's), read once.
func (c Config) check() (*x509.CertPool, error) {
	var problems config.Problems
	var pool *x509.CertPool
	if c.Resolver != "" {
		if _, _, err := net.SplitHostPort(c.Resolver); err != nil {
			problems.Add(EnvResolver, "%q is not host:port", c.Resolver)
		}
	}
	if c.TLSAddr != "" {
		if _, _, err := net.SplitHostPort(c.TLSAddr); err != nil {
			problems.Add(EnvTLSAddr, "%q is not host:port", c.TLSAddr)
		}
	}
	if c.Roots != "" {
		var err error
		if pool, err = loadRoots(c.Roots); err != nil {
			problems.Add(EnvRoots, "%v", err)
		}
	}
	if c.Timeout <= 0 {
		problems.Add(EnvTimeout, "%s must be positive", c.Timeout)
	}
	return pool, problems.Err()
}

func loadRoots(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// Challenge is the TXT record that proves the customer controls host for
// this tenant (its provisioning run owner): the value names the tenant, so
// a record added for one tenant never lets another claim the name.
func Challenge(tenant, owner, host string) (name, value string) {
	sum := sha256.Sum256([]byte(tenant + "\n" + owner + "\n" + host))
	return ChallengePrefix + host, "tenantflow-verify=" + hex.EncodeToString(sum[:16])
}

// ChallengePrefix starts the name of every challenge record.
const ChallengePrefix = "_tenantflow-challenge."

// Activities check domains.
type Activities struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
}

// ErrNotConfigured is the failure type of the activities of a worker
// whose proxy does not serve HTTPS: custom domains cannot be served.
const ErrNotConfigured = "DomainsNotConfigured"

// Unconfigured are the activities of a worker without an HTTPS proxy:
// each answers ErrNotConfigured, so a domain fails with the reason
// instead of waiting for a worker that has them.
func Unconfigured() *Activities { return &Activities{} }

func (a *Activities) configured() error {
	if a == nil || a.client == nil {
		return temporal.NewNonRetryableApplicationError("custom domains need the proxy to serve HTTPS (TENANTFLOW_PROXY_ENABLED=true, TENANTFLOW_PROXY_PUBLIC_SCHEME=https)", ErrNotConfigured, nil)
	}
	return nil
}

// New builds the activities from a valid configuration (TLSAddr set).
func New(cfg Config, log *slog.Logger) (*Activities, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	roots, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if cfg.TLSAddr == "" {
		return nil, fmt.Errorf("%s: is empty", EnvTLSAddr)
	}
	if log == nil {
		log = slog.Default()
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	tr := &http.Transport{
		TLSClientConfig:   tlsCfg,
		DisableKeepAlives: true,
		// Whatever the name resolves to, the check asks the proxy: it
		// proves what the proxy serves, before or after DNS moved.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, cfg.TLSAddr)
		},
	}
	return &Activities{cfg: cfg, log: log, client: &http.Client{Timeout: cfg.Timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// VerifyInput asks whether the challenge record is in place.
type VerifyInput struct {
	Host  string `json:"host"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Verification is what the DNS answered.
type Verification struct {
	Verified bool `json:"verified"`
	// Found are the TXT values seen at the name (at most 5), to tell a
	// customer who added the wrong one.
	Found []string `json:"found,omitempty"`
}

// VerifyDomain looks the challenge record up. A missing record is an
// answer (not verified), not an error; a resolver that cannot be reached
// is retried. It only reads.
func (a *Activities) VerifyDomain(ctx context.Context, in VerifyInput) (Verification, error) {
	if err := a.configured(); err != nil {
		return Verification{}, err
	}
	if !strings.HasPrefix(in.Name, ChallengePrefix) || in.Value == "" {
		return Verification{}, temporal.NewNonRetryableApplicationError("not a challenge record: "+in.Name, "BadInput", nil)
	}
	values, err := a.txt(ctx, in.Name)
	if err != nil {
		return Verification{}, err
	}
	var v Verification
	for _, got := range values {
		if got == in.Value {
			v.Verified = true
		}
		if len(v.Found) < 5 {
			v.Found = append(v.Found, got)
		}
	}
	a.log.InfoContext(ctx, "domain challenge looked up", "host", in.Host, "verified", v.Verified, "found", len(values))
	return v, nil
}

// txt is the TXT values at name ("" joined per record), none when the
// name does not exist.
func (a *Activities) txt(ctx context.Context, name string) ([]string, error) {
	if a.cfg.Resolver == "" {
		r := &net.Resolver{}
		vals, err := r.LookupTXT(ctx, name)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, nil
		}
		return vals, err
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	c := &dns.Client{Timeout: a.cfg.Timeout}
	resp, _, err := c.ExchangeContext(ctx, m, a.cfg.Resolver)
	if err != nil {
		return nil, fmt.Errorf("ask %s for %s TXT: %w", a.cfg.Resolver, name, err)
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("%s answered %s for %s TXT", a.cfg.Resolver, dns.RcodeToString[resp.Rcode], name)
	}
	var out []string
	for _, rr := range resp.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}

// HTTPSInput names the domain to check.
type HTTPSInput struct {
	Host string `json:"host"`
}

// HTTPSAnswer is the first valid HTTPS answer on the domain.
type HTTPSAnswer struct {
	Status   int       `json:"status"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"notAfter"`
}

// CheckHTTPS asks the proxy for https://<host>/ with host as server name
// and verifies the certificate chain and name as a customer's browser
// would. An invalid certificate (Caddy still obtaining the real one) is a
// retryable error; the caller's retry policy is the patience. It only
// reads.
func (a *Activities) CheckHTTPS(ctx context.Context, in HTTPSInput) (HTTPSAnswer, error) {
	if err := a.configured(); err != nil {
		return HTTPSAnswer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+in.Host+"/", nil)
	if err != nil {
		return HTTPSAnswer{}, temporal.NewNonRetryableApplicationError(err.Error(), "BadInput", nil)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return HTTPSAnswer{}, fmt.Errorf("https://%s/ through %s: %w", in.Host, a.cfg.TLSAddr, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	leaf := resp.TLS.PeerCertificates[0]
	a.log.InfoContext(ctx, "domain answers over HTTPS", "host", in.Host, "status", resp.StatusCode, "issuer", leaf.Issuer.String(), "notAfter", leaf.NotAfter)
	return HTTPSAnswer{Status: resp.StatusCode, Issuer: leaf.Issuer.String(), NotAfter: leaf.NotAfter}, nil
}
