// Package dns publishes one DNS record per tenant (acme.apps.example.com →
// the tenant ingress) on any authoritative server that accepts RFC 2136
// dynamic updates signed with TSIG: BIND, PowerDNS, Knot, Windows DNS.
// Every change is one UPDATE message that replaces the name's address and
// alias records, so it is atomic and can be repeated any number of times.
//
// # Ownership
//
// A name is marked by a TXT record at _tenantflow.<name> whose value names
// the tenant and the provisioning run that made it:
// "tenantflow-owner=<tenant>/<run>". Every change carries that exact value
// as an RFC 2136 prerequisite, so the server itself refuses a change to a
// name another run owns: a tenant requested again after its workflow was
// terminated can neither take over the live tenant's name nor, by
// compensation, delete it. EnsureDNSRecord refuses a name of another run
// (ResourceNotOurs), RemoveDNSRecord leaves it alone and succeeds.
//
// Names published before runs were stamped carry "tenantflow-owner=<tenant>"
// (legacy). Only a call with Adopt (the release, decommission and restore
// of an existing tenant, never its provisioning) treats such a name of the
// same tenant as its own: Ensure restamps it with its run, Remove deletes
// it. An empty Owner (a call from before runs were stamped, or a test's
// cleanup) publishes with the legacy mark, and removes the name under any
// mark of the tenant, as an empty owner matches any in the other packages.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	mdns "github.com/miekg/dns"
	"go.temporal.io/sdk/temporal"
)

// Error types shown in the Web UI for failures a retry cannot fix.
const (
	// ErrUpdateRejected: the server refused the update (bad key or
	// signature, zone not served or not updatable with this key).
	ErrUpdateRejected = "DNSUpdateRejected"
	// ErrInvalidName: the tenant name is malformed or outside the zone.
	ErrInvalidName = "InvalidDNSName"
	// ErrResourceNotOurs: the name is marked as another provisioning's (another
	// run of the tenant, or a legacy mark without Adopt).
	ErrResourceNotOurs = "ResourceNotOurs"
)

// managedTypes are the record types a tenant name carries and this package
// owns: Ensure replaces all of them, Remove deletes all of them, so that
// changing the ingress from an address to a hostname (or IPv4 to IPv6)
// leaves nothing stale behind. Other types at the name (TXT, MX…) are left
// alone.
var managedTypes = [...]uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeCNAME}

// RecordInput names the tenant's DNS name.
type RecordInput struct {
	// Tenant is the tenant ID, for logs.
	Tenant string `json:"tenant"`
	// Name is the tenant's FQDN inside the configured zone, e.g.
	// "acme.apps.example.com" (a trailing dot is optional).
	Name string `json:"name"`
	// Owner is the provisioning run the name belongs to (see the package
	// documentation); empty: Ensure writes the tenant's legacy mark, Remove
	// matches any mark of the tenant.
	Owner string `json:"owner,omitempty"`
	// Adopt lets this call take over the tenant's legacy mark (no run):
	// set by the release, decommission and restore of an existing tenant,
	// never by provisioning.
	Adopt bool `json:"adopt,omitempty"`
}

// Record is what EnsureDNSRecord published, so the workflow can show it.
type Record struct {
	Name   string `json:"name"`   // FQDN with trailing dot
	Type   string `json:"type"`   // A, AAAA or CNAME
	Target string `json:"target"` // address, or FQDN for a CNAME
	TTL    int    `json:"ttl"`    // seconds
}

// conn is the configured connection to the DNS server, shared by the
// Activities and the Client.
type conn struct {
	cfg settings
	udp *mdns.Client
	tcp *mdns.Client
	log *slog.Logger
}

// Client asks the DNS server what is not an activity: the worker's
// sign-of-life check at start-up, and lookups for tests and diagnostics.
type Client struct{ *conn }

// Activities publish and withdraw tenant records. Every exported method is
// an activity, so the worker registers the struct whole
// (RegisterActivity(dns.NewActivities(c))); it holds no per-call state.
type Activities struct{ *conn }

// NewClient validates the settings (whether or not Enabled is set: the
// caller has decided to use DNS) and builds the client. It does no network
// I/O.
func NewClient(cfg Config, log *slog.Logger) (*Client, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, fmt.Errorf("dns config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secrets := map[string]string{s.keyName: s.secret}
	return &Client{&conn{
		cfg: s,
		udp: &mdns.Client{Net: "udp", Timeout: s.timeout, TsigSecret: secrets, UDPSize: udpSize},
		tcp: &mdns.Client{Net: "tcp", Timeout: s.timeout, TsigSecret: secrets},
		log: log.With("component", "dns", "zone", s.zone, "server", s.server),
	}}, nil
}

// NewActivities are the record activities on c's server.
func NewActivities(c *Client) *Activities { return &Activities{c.conn} }

// New is NewClient and NewActivities in one, for a caller that needs no
// Check.
func New(cfg Config, log *slog.Logger) (*Activities, error) {
	c, err := NewClient(cfg, log)
	if err != nil {
		return nil, err
	}
	return NewActivities(c), nil
}

// ErrNameInUse is the failure type of a tenant name that already holds
// records Tenantflow did not make (www, ns1, mail, …); they are never
// replaced or removed.
const ErrNameInUse = "DNSNameInUse"

// ownerRR is the TXT record that marks a name as the tenant's: Tenantflow
// only ever replaces or removes records of a name it marks. It sits at
// _tenantflow.<name>, since a CNAME cannot share its name with other data.
// Its value is ownerValue(tenant, owner). miekg/dns rewrites the header of an
// RR it adds as a prerequisite or a deletion, so every use takes a fresh one.
func ownerRR(name, value string, ttl uint32) *mdns.TXT {
	return &mdns.TXT{Hdr: mdns.RR_Header{Name: ownerName(name), Rrtype: mdns.TypeTXT, Class: mdns.ClassINET, Ttl: ttl},
		Txt: []string{value}}
}

func ownerName(name string) string { return "_tenantflow." + name }

const ownerPrefix = "tenantflow-owner="

// ownerValue is the mark of the tenant's run; without a run, the legacy
// mark of names published before runs were stamped.
func ownerValue(tenant, owner string) string {
	if owner == "" {
		return ownerPrefix + tenant
	}
	return ownerPrefix + tenant + "/" + owner
}

// maxOwnerLen keeps the mark within one TXT string (255 octets).
const maxOwnerLen = 160

func hasRcode(err error, rcode int) bool {
	var rc *rcodeError
	return errors.As(err, &rc) && rc.rcode == rcode && rc.tsigError == 0
}

// EnsureDNSRecord points the tenant's name at the configured ingress. The
// server checks ownership atomically (RFC 2136 prerequisites): the first
// UPDATE applies only where the owner TXT record holds exactly this run's
// mark, and replaces the name's A, AAAA and CNAME RRsets with the record;
// on a name that is not ours yet, the second applies only if the name and
// its mark are entirely unused, and adds the record with this run's mark.
// A retry changes nothing and a changed ingress replaces the old record. A
// name marked by another run is refused (ResourceNotOurs), one marked in the
// legacy format is taken over only with Adopt, and a name in use by anyone
// else is refused (DNSNameInUse).
func (a *Activities) EnsureDNSRecord(ctx context.Context, in RecordInput) (Record, error) {
	name, err := a.recordName(in)
	if err != nil {
		return Record{}, err
	}
	mark := ownerValue(in.Tenant, in.Owner)
	owner := func() mdns.RR { return ownerRR(name, mark, a.cfg.ttl) }
	rec := Record{Name: name, Type: mdns.TypeToString[a.cfg.rrtype], Target: a.cfg.target, TTL: int(a.cfg.ttl)}
	op := fmt.Sprintf("ensure DNS record %s %s %s", name, rec.Type, rec.Target)
	err = a.update(ctx, func(m *mdns.Msg) {
		m.Used([]mdns.RR{owner()})
		m.RemoveRRset(a.rrsets(name))
		m.Insert([]mdns.RR{a.newRR(name)})
	})
	if hasRcode(err, mdns.RcodeNXRrset) {
		err = a.update(ctx, func(m *mdns.Msg) {
			m.NameNotUsed([]mdns.RR{&mdns.ANY{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeANY, Class: mdns.ClassANY}}})
			m.RRsetNotUsed([]mdns.RR{&mdns.ANY{Hdr: mdns.RR_Header{Name: ownerName(name), Rrtype: mdns.TypeTXT, Class: mdns.ClassANY}}})
			m.Insert([]mdns.RR{a.newRR(name), owner()})
		})
		if hasRcode(err, mdns.RcodeYXDomain) || hasRcode(err, mdns.RcodeYXRrset) {
			err = a.claimMarked(ctx, in, name, op)
		}
	}
	if err != nil {
		return Record{}, a.fail(in, op, err)
	}
	a.log.Info("dns record ensured", "tenant", in.Tenant, "owner", in.Owner, "name", name, "type", rec.Type, "target", rec.Target, "ttl", rec.TTL)
	return rec, nil
}

// claimMarked decides about a name that is in use but not marked as this
// run's: a legacy mark of the tenant is taken over with Adopt (one UPDATE
// conditional on that mark, replacing it and the records); anything else is
// refused. A name whose mark changed meanwhile is retried.
func (a *Activities) claimMarked(ctx context.Context, in RecordInput, name, op string) error {
	marks, err := a.marks(ctx, name)
	if err != nil {
		return err
	}
	legacy := ownerValue(in.Tenant, "")
	switch {
	case len(marks) == 0:
		msg := fmt.Sprintf("%s: %s already has records Tenantflow did not make; pick another tenant name", op, name)
		return temporal.NewNonRetryableApplicationError(msg, ErrNameInUse, nil)
	case len(marks) == 1 && marks[0] == legacy && in.Adopt && in.Owner != "":
		err := a.update(ctx, func(m *mdns.Msg) {
			a.dropMarked(m, name, legacy)
			m.Insert([]mdns.RR{a.newRR(name), ownerRR(name, ownerValue(in.Tenant, in.Owner), a.cfg.ttl)})
		})
		if hasRcode(err, mdns.RcodeNXRrset) {
			return fmt.Errorf("%s: the mark of %s changed meanwhile, looking again", op, name)
		}
		if err == nil {
			a.log.Info("adopted the tenant's dns name published before runs were stamped", "tenant", in.Tenant, "owner", in.Owner, "name", name)
		}
		return err
	case len(marks) == 1 && marks[0] == ownerValue(in.Tenant, in.Owner):
		return fmt.Errorf("%s: %s became ours meanwhile, looking again", op, name)
	}
	msg := fmt.Sprintf("%s: DNS name %s is marked %q, not by this provisioning of %s (owner %q): is the tenant already deployed?",
		op, name, strings.Join(marks, ", "), in.Tenant, in.Owner)
	return temporal.NewNonRetryableApplicationError(msg, ErrResourceNotOurs, nil)
}

// marks reads the values of the name's owner TXT records.
func (a *Activities) marks(ctx context.Context, name string) ([]string, error) {
	r, err := a.query(ctx, ownerName(name), mdns.TypeTXT)
	if err != nil {
		return nil, fmt.Errorf("read owner of %s: %w", name, err)
	}
	if r.Rcode != mdns.RcodeSuccess && r.Rcode != mdns.RcodeNameError {
		return nil, fmt.Errorf("read owner of %s at %s: %s", name, a.cfg.server, rcodeName(r.Rcode))
	}
	var out []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*mdns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}

// dropMarked adds to m the deletion of the name's managed RRsets and of
// its owner record, conditional on that record holding exactly mark (an
// RFC 2136 value-dependent prerequisite; NXRRSET otherwise).
func (a *Activities) dropMarked(m *mdns.Msg, name, mark string) {
	m.Used([]mdns.RR{ownerRR(name, mark, 0)})
	m.RemoveRRset(a.rrsets(name))
	m.Remove([]mdns.RR{ownerRR(name, mark, 0)})
}

// removableMarks are the marks under which RemoveDNSRecord may delete the
// name: this run's and, with Adopt, the tenant's legacy mark. An empty
// Owner matches any mark of the tenant: the legacy one and every run's the
// name carries now (read here, checked again by the server).
func (a *Activities) removableMarks(ctx context.Context, in RecordInput, name string) ([]string, error) {
	legacy := ownerValue(in.Tenant, "")
	switch {
	case in.Owner == "":
		found, err := a.marks(ctx, name)
		if err != nil {
			return nil, err
		}
		marks := []string{legacy}
		for _, m := range found {
			if strings.HasPrefix(m, legacy+"/") {
				marks = append(marks, m)
			}
		}
		return marks, nil
	case in.Adopt:
		return []string{ownerValue(in.Tenant, in.Owner), legacy}, nil
	}
	return []string{ownerValue(in.Tenant, in.Owner)}, nil
}

// RemoveDNSRecord deletes the tenant name's A, AAAA and CNAME RRsets and
// its owner record, only where the owner record holds this run's mark (or,
// with Adopt, the tenant's legacy mark; see removableMarks): the server
// checks it in the same UPDATE. A name already gone, or marked by another
// run, is success: nothing of ours is left there.
func (a *Activities) RemoveDNSRecord(ctx context.Context, in RecordInput) error {
	name, err := a.recordName(in)
	if err != nil {
		return err
	}
	marks, err := a.removableMarks(ctx, in, name)
	if err != nil {
		return a.fail(in, "remove DNS records of "+name, err)
	}
	for _, mark := range marks {
		err = a.update(ctx, func(m *mdns.Msg) { a.dropMarked(m, name, mark) })
		if !hasRcode(err, mdns.RcodeNXRrset) {
			break
		}
	}
	if hasRcode(err, mdns.RcodeNXRrset) {
		if others, merr := a.marks(ctx, name); merr == nil && len(others) > 0 {
			a.log.Warn("dns name is not this provisioning's: left alone", "tenant", in.Tenant, "owner", in.Owner, "name", name, "marks", others)
		} else {
			a.log.Info("no dns records of the tenant to remove", "tenant", in.Tenant, "name", name)
		}
		return nil
	}
	if err != nil {
		return a.fail(in, "remove DNS records of "+name, err)
	}
	a.log.Info("dns records removed", "tenant", in.Tenant, "owner", in.Owner, "name", name)
	return nil
}

// Lookup asks the configured server (not a resolver, so no cache is in the
// way) for the name's address records and returns their values: addresses,
// or the CNAME target (with trailing dot) for an alias. A name that does
// not exist, or has no such records, gives an empty result.
func (c *Client) Lookup(ctx context.Context, name string) ([]string, error) {
	fqdn := mdns.Fqdn(normalName(name))
	var out []string
	seen := map[string]bool{}
	for _, qtype := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
		r, err := c.query(ctx, fqdn, qtype)
		if err != nil {
			return nil, fmt.Errorf("look up %s %s: %w", fqdn, mdns.TypeToString[qtype], err)
		}
		if r.Rcode == mdns.RcodeNameError {
			return []string{}, nil
		}
		if r.Rcode != mdns.RcodeSuccess {
			return nil, fmt.Errorf("look up %s %s at %s: %s", fqdn, mdns.TypeToString[qtype], c.cfg.server, rcodeName(r.Rcode))
		}
		for _, rr := range r.Answer {
			var v string
			switch rr := rr.(type) {
			case *mdns.A:
				v = rr.A.String()
			case *mdns.AAAA:
				v = rr.AAAA.String()
			case *mdns.CNAME:
				v = rr.Target
			default:
				continue
			}
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// Check proves the server answers authoritatively for the zone with one
// SOA query. It does not prove the key works: that needs an update.
func (c *Client) Check(ctx context.Context) error {
	r, err := c.query(ctx, c.cfg.zone, mdns.TypeSOA)
	if err != nil {
		return fmt.Errorf("check DNS zone %s: %w", c.cfg.zone, err)
	}
	if r.Rcode != mdns.RcodeSuccess {
		return fmt.Errorf("check DNS zone %s at %s: %s", c.cfg.zone, c.cfg.server, rcodeName(r.Rcode))
	}
	if !r.Authoritative {
		return fmt.Errorf("check DNS zone %s: %s is not authoritative for it (updates need the primary)", c.cfg.zone, c.cfg.server)
	}
	for _, rr := range r.Answer {
		if soa, ok := rr.(*mdns.SOA); ok && strings.EqualFold(soa.Hdr.Name, c.cfg.zone) {
			return nil
		}
	}
	return fmt.Errorf("check DNS zone %s: %s returned no SOA record for it", c.cfg.zone, c.cfg.server)
}

// recordName checks that the tenant name is a hostname strictly inside the
// zone (the apex holds the zone's SOA and NS and cannot be a tenant) and
// returns it as a lower case FQDN.
func (a *Activities) recordName(in RecordInput) (string, error) {
	name := normalName(in.Name)
	zone := strings.TrimSuffix(a.cfg.zone, ".")
	var msg string
	switch {
	case !validHostname(name):
		msg = fmt.Sprintf("DNS name %q is not a valid hostname", in.Name)
	case name == zone:
		msg = fmt.Sprintf("DNS name %q is the zone apex, not a name inside zone %s", in.Name, a.cfg.zone)
	case !strings.HasSuffix(name, "."+zone):
		msg = fmt.Sprintf("DNS name %q is outside zone %s", in.Name, a.cfg.zone)
	case len(in.Owner) > maxOwnerLen || strings.ContainsAny(in.Owner, "/\"\\"):
		msg = fmt.Sprintf("owner %q of DNS name %q is not a run id", in.Owner, in.Name)
	default:
		return mdns.Fqdn(name), nil
	}
	a.log.Warn("invalid dns name", "tenant", in.Tenant, "name", in.Name)
	return "", temporal.NewNonRetryableApplicationError(msg, ErrInvalidName, nil)
}

// newRR is the record for the configured target.
func (a *Activities) newRR(name string) mdns.RR {
	hdr := mdns.RR_Header{Name: name, Rrtype: a.cfg.rrtype, Class: mdns.ClassINET, Ttl: a.cfg.ttl}
	switch a.cfg.rrtype {
	case mdns.TypeA:
		return &mdns.A{Hdr: hdr, A: net.ParseIP(a.cfg.target)}
	case mdns.TypeAAAA:
		return &mdns.AAAA{Hdr: hdr, AAAA: net.ParseIP(a.cfg.target)}
	default:
		return &mdns.CNAME{Hdr: hdr, Target: a.cfg.target}
	}
}

// rrsets are the name's managed RRsets, as "delete RRset" placeholders.
func (a *Activities) rrsets(name string) []mdns.RR {
	rrs := make([]mdns.RR, 0, len(managedTypes))
	for _, t := range managedTypes {
		rrs = append(rrs, &mdns.ANY{Hdr: mdns.RR_Header{Name: name, Rrtype: t, Class: mdns.ClassINET}})
	}
	return rrs
}

// fail logs a failed change with the tenant and returns it as Temporal
// should see it: a rejection a retry cannot fix as a non-retryable
// DNSUpdateRejected (at the top of the chain, where the SDK looks),
// anything else (timeouts, refused connections, SERVFAIL) as a plain error
// so the activity is retried.
func (a *Activities) fail(in RecordInput, op string, err error) error {
	a.log.Warn("dns update failed", "tenant", in.Tenant, "name", in.Name, "error", err.Error())
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr == err { //nolint:errorlint // identity: the ApplicationError must be the error itself, unwrapped
		return err // decided already (ownership), with its own message
	}
	var rc *rcodeError
	if errors.As(err, &rc) && rc.permanent() {
		// The rcode is the whole cause and is in the message already;
		// attaching it again would only repeat it in the Web UI.
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: DNS server %s rejected the update: %s", op, a.cfg.server, rc), ErrUpdateRejected, nil)
	}
	return fmt.Errorf("%s: %w", op, err)
}
