package dns

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/tenantflow/tenantflow/internal/config"
)

// Environment variables, named in every validation error so the operator
// sees the setting to fix.
const (
	EnvEnabled       = "TENANTFLOW_DNS_ENABLED"
	EnvServer        = "TENANTFLOW_DNS_SERVER"
	EnvZone          = "TENANTFLOW_DNS_ZONE"
	EnvTSIGName      = "TENANTFLOW_DNS_TSIG_NAME"
	EnvTSIGSecret    = "TENANTFLOW_DNS_TSIG_SECRET"
	EnvTSIGAlgorithm = "TENANTFLOW_DNS_TSIG_ALGORITHM"
	EnvTTL           = "TENANTFLOW_DNS_TTL"
	EnvTarget        = "TENANTFLOW_DNS_TARGET"
	EnvTimeout       = "TENANTFLOW_DNS_TIMEOUT"
)

// Config says which authoritative server gets the tenants' records and how
// updates are signed. Any RFC 2136 server works (BIND, PowerDNS, Knot,
// Windows DNS) as long as it accepts updates signed with the TSIG key.
type Config struct {
	// Enabled turns the DNS step on; when false Validate accepts anything.
	Enabled bool
	// Server is the primary's host:port; updates must go to the primary.
	Server string
	// Zone is the zone the tenant names live in ("apps.example.com");
	// a trailing dot is optional.
	Zone string
	// TSIGName is the key name the server knows (BIND: key "<name>" {…}).
	TSIGName string
	// TSIGSecret is the key's base64 secret. It is never logged nor put in
	// an error message; Config's String and LogValue redact it.
	TSIGSecret string
	// TSIGAlgorithm is hmac-sha256 (default), hmac-sha512 or hmac-sha1.
	TSIGAlgorithm string
	// TTL of the records written, in whole seconds.
	TTL time.Duration
	// Target is the tenant ingress: an IPv4 or IPv6 address gives an A or
	// AAAA record, a hostname gives a CNAME.
	Target string
	// Timeout bounds each exchange with the server.
	Timeout time.Duration
}

// Register binds the settings to flags and TENANTFLOW_DNS_* variables.
func (c *Config) Register(s *config.Set) {
	s.Bool(&c.Enabled, "dns-enabled", EnvEnabled, false, "publish a DNS record per tenant with RFC 2136 updates")
	s.String(&c.Server, "dns-server", EnvServer, "127.0.0.1:53", "primary DNS server host:port that accepts the updates")
	s.String(&c.Zone, "dns-zone", EnvZone, "", "zone the tenant names live in (e.g. apps.example.com)")
	s.String(&c.TSIGName, "dns-tsig-name", EnvTSIGName, "", "TSIG key name")
	s.Secret(&c.TSIGSecret, "dns-tsig-secret", EnvTSIGSecret, "TSIG key secret, base64")
	s.String(&c.TSIGAlgorithm, "dns-tsig-algorithm", EnvTSIGAlgorithm, "hmac-sha256", "TSIG algorithm: hmac-sha256, hmac-sha512 or hmac-sha1")
	s.Duration(&c.TTL, "dns-ttl", EnvTTL, 300*time.Second, "TTL of the tenant records")
	s.String(&c.Target, "dns-target", EnvTarget, "", "tenant ingress: an IP address (A/AAAA record) or a hostname (CNAME)")
	s.Duration(&c.Timeout, "dns-timeout", EnvTimeout, 5*time.Second, "timeout of one exchange with the DNS server")
}

// String shows the configuration with the TSIG secret redacted.
func (c Config) String() string {
	return fmt.Sprintf("{Enabled:%t Server:%s Zone:%s TSIGName:%s TSIGSecret:%s TSIGAlgorithm:%s TTL:%s Target:%s Timeout:%s}",
		c.Enabled, c.Server, c.Zone, c.TSIGName, redacted(c.TSIGSecret), c.TSIGAlgorithm, c.TTL, c.Target, c.Timeout)
}

// LogValue logs the configuration with the TSIG secret redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("enabled", c.Enabled), slog.String("server", c.Server), slog.String("zone", c.Zone),
		slog.String("tsigName", c.TSIGName), slog.String("tsigSecret", redacted(c.TSIGSecret)),
		slog.String("tsigAlgorithm", c.TSIGAlgorithm), slog.Duration("ttl", c.TTL),
		slog.String("target", c.Target), slog.Duration("timeout", c.Timeout))
}

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// Validate reports every bad setting by its variable name when DNS is
// enabled; a disabled component is not checked.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	_, err := c.settings()
	return err
}

// settings is the validated, normalised form of Config the client uses.
type settings struct {
	server    string
	zone      string // lower case FQDN: "apps.example.com."
	keyName   string // lower case FQDN
	algorithm string // miekg/dns algorithm name: "hmac-sha256."
	secret    string // base64
	ttl       uint32
	rrtype    uint16 // A, AAAA or CNAME
	target    string // canonical address, or FQDN for a CNAME
	timeout   time.Duration
}

// algorithms are the TSIG algorithms every RFC 2136 server supports.
var algorithms = map[string]string{
	"hmac-sha256": mdns.HmacSHA256,
	"hmac-sha512": mdns.HmacSHA512,
	"hmac-sha1":   mdns.HmacSHA1,
}

func (c Config) settings() (settings, error) {
	var s settings
	var problems config.Problems
	bad := problems.Add

	s.server = strings.TrimSpace(c.Server)
	if host, port, err := net.SplitHostPort(s.server); err != nil || host == "" {
		bad(EnvServer, "%q is not host:port", c.Server)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		bad(EnvServer, "%q has no valid port", c.Server)
	}

	if z := normalName(c.Zone); z == "" {
		bad(EnvZone, "is empty (e.g. apps.example.com)")
	} else if !validHostname(z) {
		bad(EnvZone, "%q is not a valid domain name", c.Zone)
	} else {
		s.zone = mdns.Fqdn(z)
	}

	if k := normalName(c.TSIGName); k == "" {
		bad(EnvTSIGName, "is empty: updates must be signed")
	} else if _, ok := mdns.IsDomainName(k); !ok {
		bad(EnvTSIGName, "%q is not a valid key name", c.TSIGName)
	} else {
		s.keyName = mdns.Fqdn(k)
	}

	// The secret itself never appears in these messages.
	s.secret = strings.TrimSpace(c.TSIGSecret)
	if s.secret == "" {
		bad(EnvTSIGSecret, "is empty: updates must be signed")
	} else if raw, err := base64.StdEncoding.DecodeString(s.secret); err != nil {
		bad(EnvTSIGSecret, "is not valid base64")
	} else if len(raw) == 0 {
		bad(EnvTSIGSecret, "decodes to an empty key")
	}

	alg := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(c.TSIGAlgorithm)), ".")
	if alg == "" {
		alg = "hmac-sha256"
	}
	if a, ok := algorithms[alg]; ok {
		s.algorithm = a
	} else {
		bad(EnvTSIGAlgorithm, "%q is not one of hmac-sha256, hmac-sha512, hmac-sha1", c.TSIGAlgorithm)
	}

	switch {
	case c.TTL < time.Second:
		bad(EnvTTL, "%s is below 1s", c.TTL)
	case c.TTL%time.Second != 0:
		bad(EnvTTL, "%s is not whole seconds", c.TTL)
	case c.TTL/time.Second > math.MaxInt32:
		bad(EnvTTL, "%s is above the DNS maximum of %ds", c.TTL, math.MaxInt32)
	default:
		s.ttl = uint32(c.TTL / time.Second)
	}

	target := strings.TrimSpace(c.Target)
	if addr, err := netip.ParseAddr(target); err == nil {
		addr = addr.Unmap()
		switch {
		case addr.Zone() != "":
			bad(EnvTarget, "%q: an address with a zone index cannot be published", c.Target)
		case addr.Is4():
			s.rrtype, s.target = mdns.TypeA, addr.String()
		default:
			s.rrtype, s.target = mdns.TypeAAAA, addr.String()
		}
	} else if h := normalName(target); h == "" {
		bad(EnvTarget, "is empty: set the tenant ingress address or hostname")
	} else if !validHostname(h) || numericTLD(h) {
		bad(EnvTarget, "%q is neither an IP address nor a hostname", c.Target)
	} else {
		s.rrtype, s.target = mdns.TypeCNAME, mdns.Fqdn(h)
	}

	if c.Timeout <= 0 {
		bad(EnvTimeout, "%s must be positive", c.Timeout)
	}
	s.timeout = c.Timeout

	if err := problems.Err(); err != nil {
		return settings{}, err
	}
	return s, nil
}

// normalName lower-cases a name and drops one trailing dot.
func normalName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// validHostname accepts names made of 1–63 character labels of letters,
// digits, '-' and '_' (service labels), not starting or ending with '-'.
// Stricter than the DNS allows on purpose: tenant names end up in URLs.
func validHostname(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// numericTLD catches mistyped addresses ("10.0.0.256") that would otherwise
// pass as hostnames: no top-level domain is all digits.
func numericTLD(name string) bool {
	tld := name[strings.LastIndexByte(name, '.')+1:]
	_, err := strconv.Atoi(tld)
	return err == nil
}
