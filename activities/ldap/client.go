// Package ldap gives each tenant its own part of the directory: an
// organizational unit below the configured base, an admin account in it and
// a "<tenant>-admins" group holding that account. Every activity opens its
// own connection (dial, bind, work, close): activities are rare and short,
// and a fresh connection never carries a broken state from a previous
// attempt into a retry.
//
// # Ownership
//
// The OU carries two description values: "Tenantflow tenant <tenant>"
// (Tenantflow made it) and "Tenantflow owner <run>" (the provisioning run
// that made it, written in the same Add). The users and the group below an
// OU are its owner's. EnsureDirectory and EnableAccounts refuse an OU of
// another run (ResourceNotOurs) and never change it; RemoveDirectory and
// DisableAccounts leave it alone with a warning and succeed: a tenant
// requested again after its workflow was terminated, or after an incomplete
// purge, neither adopts nor destroys the other run's accounts.
//
// An OU made before runs were stamped has the tenant's description only.
// Calls with Adopt (the release, decommission, restore and purge of an
// existing tenant, never its provisioning) treat it as theirs: Ensure and
// Enable stamp it with their run, Remove and Disable act on it. An empty
// Owner keeps the behaviour from before runs were stamped.
package ldap

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"

	goldap "github.com/go-ldap/ldap/v3"
	"go.temporal.io/sdk/temporal"
)

// Error types shown in the Web UI for failures a retry cannot fix.
const (
	ErrInvalidInput     = "InvalidDirectoryInput"
	ErrBindRejected     = "LDAPBindRejected"
	ErrBaseMissing      = "LDAPBaseMissing"
	ErrRequestRejected  = "LDAPRequestRejected"
	ErrEntryNotOurs     = "LDAPEntryNotOurs"
	ErrDirectoryMissing = "LDAPDirectoryMissing"
	// ErrResourceNotOurs: the tenant's OU was made by another provisioning run
	// (or before runs were stamped, for a call without Adopt).
	ErrResourceNotOurs = "ResourceNotOurs"
)

// server is the configured LDAP server, shared by the Activities and the
// Client.
type server struct {
	cfg      Config
	password string // bind password, resolved once from the variable or file
	tls      *tls.Config
	log      *slog.Logger
}

// Client reaches the LDAP server for what is not an activity: the
// worker's sign-of-life check at start-up.
type Client struct{ *server }

// Activities manages tenant directories on one LDAP server. Every exported
// method is an activity, so the worker registers the struct whole
// (RegisterActivity(ldap.NewActivities(c))).
type Activities struct{ *server }

// NewClient validates cfg and prepares the connection settings. It does no
// network I/O; Check does.
func NewClient(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("ldap config: %w", err)
	}
	pw, err := cfg.bindPassword()
	if err != nil {
		return nil, fmt.Errorf("ldap config: %s: %w", envBindPasswordFile, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u, _ := url.Parse(cfg.URL) // checked above
	srv := &server{cfg: cfg, password: pw, log: log}
	if u.Scheme == "ldaps" || cfg.StartTLS {
		srv.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		if cfg.TLSCA != "" {
			if srv.tls.RootCAs, err = loadCA(cfg.TLSCA); err != nil {
				return nil, fmt.Errorf("ldap config: %s: %w", envTLSCA, err)
			}
		}
	} else if ip := net.ParseIP(u.Hostname()); !(ip != nil && ip.IsLoopback()) && u.Hostname() != "localhost" {
		log.Warn("LDAP connection is not encrypted: the bind password and tenant admin passwords cross the network in clear; use ldaps:// or "+envStartTLS,
			"url", cfg.URL)
	}
	return &Client{srv}, nil
}

// NewActivities are the directory activities on c's server.
func NewActivities(c *Client) *Activities { return &Activities{c.server} }

// New is NewClient and NewActivities in one, for a caller that needs no
// Check.
func New(cfg Config, log *slog.Logger) (*Activities, error) {
	c, err := NewClient(cfg, log)
	if err != nil {
		return nil, err
	}
	return NewActivities(c), nil
}

// Check proves the server answers, the bind credentials work and the base
// DN exists, so a misconfiguration shows at worker start-up rather than in
// the first tenant's workflow.
func (c *Client) Check(ctx context.Context) error {
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Search(goldap.NewSearchRequest(c.cfg.BaseDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases,
		1, 0, false, "(objectClass=*)", []string{"1.1"}, nil))
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("base DN %s (%s) does not exist", c.cfg.BaseDN, envBaseDN), ErrBaseMissing, err)
	}
	return c.classify(ctx, "read base DN "+c.cfg.BaseDN, err)
}

// session is one bound connection, closed early if the activity's context
// ends: go-ldap requests take no context, closing aborts the one in flight.
type session struct {
	*goldap.Conn
	stop func() bool
}

// Close ends the session.
func (s *session) Close() {
	s.stop()
	s.Conn.Close()
}

// connect dials, upgrades with StartTLS when configured and binds.
func (srv *server) connect(ctx context.Context) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts := []goldap.DialOpt{goldap.DialWithDialer(&net.Dialer{Timeout: srv.cfg.Timeout})}
	if srv.tls != nil {
		opts = append(opts, goldap.DialWithTLSConfig(srv.tls))
	}
	conn, err := goldap.DialURL(srv.cfg.URL, opts...)
	if err != nil {
		return nil, srv.classify(ctx, "connect to "+srv.cfg.URL, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	conn.SetTimeout(srv.cfg.Timeout)
	s := &session{Conn: conn, stop: stop}
	fail := func(err error) (*session, error) {
		s.Close()
		return nil, err
	}
	if srv.cfg.StartTLS {
		if err := conn.StartTLS(srv.tls); err != nil {
			return fail(srv.classify(ctx, "StartTLS with "+srv.cfg.URL, err))
		}
	}
	if err := conn.Bind(srv.cfg.BindDN, srv.password); err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
			return fail(temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("bind as %s rejected (invalid credentials): check %s and %s (or %s)", srv.cfg.BindDN, envBindDN, envBindPassword, envBindPasswordFile), ErrBindRejected, err))
		}
		return fail(srv.classify(ctx, "bind as "+srv.cfg.BindDN, err))
	}
	return s, nil
}

// permanent are result codes that describe the request or the server's
// configuration, not a passing state: retrying the same request cannot help.
var permanent = map[uint16]bool{
	goldap.LDAPResultAuthMethodNotSupported:       true,
	goldap.LDAPResultStrongAuthRequired:           true,
	goldap.LDAPResultConfidentialityRequired:      true,
	goldap.LDAPResultUndefinedAttributeType:       true,
	goldap.LDAPResultInappropriateMatching:        true,
	goldap.LDAPResultConstraintViolation:          true,
	goldap.LDAPResultInvalidAttributeSyntax:       true,
	goldap.LDAPResultInvalidDNSyntax:              true,
	goldap.LDAPResultInappropriateAuthentication:  true,
	goldap.LDAPResultInvalidCredentials:           true,
	goldap.LDAPResultInsufficientAccessRights:     true,
	goldap.LDAPResultNamingViolation:              true,
	goldap.LDAPResultObjectClassViolation:         true,
	goldap.LDAPResultNotAllowedOnRDN:              true,
	goldap.LDAPResultObjectClassModsProhibited:    true,
	goldap.LDAPResultUnavailableCriticalExtension: true,
}

// classify wraps err with what was being done. Rejections that a retry
// cannot change become non-retryable; network errors, timeouts, busy and
// unavailable servers (and anything unknown) stay retryable.
func (srv *server) classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	// Temporal reads the retry policy only from an ApplicationError returned
	// as is (not wrapped): pass a decision already made straight through.
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr
	}
	if ctx.Err() != nil { // the connection was closed because ctx ended
		return fmt.Errorf("%s: %w (%v)", op, ctx.Err(), err) //nolint:errorlint // the cause is the ended context; err is what it did to the connection
	}
	var le *goldap.Error
	if errors.As(err, &le) && permanent[le.ResultCode] {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", op, err), ErrRequestRejected, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// hashSSHA is the {SSHA} (salted SHA-1) form OpenLDAP and most servers
// verify. It is only used when the server refuses the Password Modify
// extended operation, so that cleartext is never stored.
func hashSSHA(password string) (string, error) {
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	h := sha1.New()
	h.Write([]byte(password))
	h.Write(salt)
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(h.Sum(nil), salt...)), nil
}
