package ldap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// MinPasswordLength is the shortest admin password EnsureDirectory accepts.
const MinPasswordLength = 16

// DisabledPrefix is put in front of every userPassword value of a tenant's
// accounts by DisableAccounts and removed by EnableAccounts. The server reads
// "{DISABLED}{SSHA}…" as a value in an unknown password scheme, which never
// verifies (OpenLDAP never falls back to a cleartext comparison for a value
// that starts with "{scheme}"), so binds fail with invalid credentials while
// the real hash is kept in the same, schema-valid attribute and can be
// restored exactly. Nothing is deleted, and the account keeps its group
// membership.
const DisabledPrefix = "{DISABLED}"

var uidPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// DirectoryInput asks for a tenant's directory and its first admin account.
type DirectoryInput struct {
	Tenant        string `json:"tenant"`
	AdminUser     string `json:"adminUser"`
	AdminPassword string `json:"adminPassword"`
	// Owner is the provisioning run the directory belongs to (see the
	// package documentation); empty: any directory of the tenant.
	Owner string `json:"owner,omitempty"`
	// Adopt lets this call take over the tenant's directory from before
	// runs were stamped: set by the release, decommission and restore of
	// an existing tenant, never by provisioning.
	Adopt bool `json:"adopt,omitempty"`
}

// Directory holds the DNs of what EnsureDirectory made, for the distributor
// that hands the account over and for the CMDB.
type Directory struct {
	OU    string `json:"ou"`
	Group string `json:"group"`
	Admin string `json:"admin"`
}

// DirectoryRef names the tenant whose directory an activity works on, and
// the run that owns it (see DirectoryInput).
type DirectoryRef struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner,omitempty"`
	Adopt  bool   `json:"adopt,omitempty"`
}

func (in DirectoryInput) validate() error {
	var problems []string
	if !spec.IsDNSLabel(in.Tenant, 63) {
		problems = append(problems, fmt.Sprintf("tenant %q must be a DNS label", in.Tenant))
	}
	if !uidPattern.MatchString(in.AdminUser) {
		problems = append(problems, fmt.Sprintf("adminUser %q must be a simple uid (a-z, 0-9, '.', '_', '-', starting with a letter or digit, at most 64)", in.AdminUser))
	}
	if n := utf8.RuneCountInString(in.AdminPassword); n < MinPasswordLength {
		problems = append(problems, fmt.Sprintf("adminPassword must have at least %d characters", MinPasswordLength))
	}
	if len(problems) > 0 {
		return temporal.NewNonRetryableApplicationError("invalid directory input: "+strings.Join(problems, "; "), ErrInvalidInput, nil)
	}
	return nil
}

func (in DirectoryRef) validate() error {
	if !spec.IsDNSLabel(in.Tenant, 63) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("invalid directory input: tenant %q must be a DNS label", in.Tenant), ErrInvalidInput, nil)
	}
	return nil
}

func (a *Activities) ouDN(tenant string) string {
	return "ou=" + goldap.EscapeDN(tenant) + "," + a.cfg.BaseDN
}

// names are the tenant's deterministic DNs: a retry finds what an earlier
// attempt made.
func (a *Activities) names(tenant, adminUser string) Directory {
	ou := a.ouDN(tenant)
	return Directory{
		OU:    ou,
		Group: "cn=" + goldap.EscapeDN(tenant+"-admins") + "," + ou,
		Admin: "uid=" + goldap.EscapeDN(adminUser) + "," + ou,
	}
}

func ouDescription(tenant string) string { return "Tenantflow tenant " + tenant }

// ownerDescPrefix starts the OU's second description value, which names the
// provisioning run that made it ("Tenantflow owner <run>").
const ownerDescPrefix = "Tenantflow owner "

// ouDescriptions are the description values of a tenant's OU: the tenant's
// mark, and the run's when there is one.
func ouDescriptions(tenant, owner string) []string {
	if owner == "" {
		return []string{ouDescription(tenant)}
	}
	return []string{ouDescription(tenant), ownerDescPrefix + owner}
}

// ownership is what an existing OU's descriptions say about who made it.
type ownership int

const (
	ouForeign  ownership = iota // no Tenantflow description: someone else's
	ouOurs                      // this run's (for an empty owner: the tenant's)
	ouLegacy                    // the tenant's, made before runs were stamped
	ouOtherRun                  // another run's
)

// ownershipOf classifies an OU entry for the tenant's run owner, with the
// runs it names.
func ownershipOf(e *goldap.Entry, tenant, owner string) (ownership, []string) {
	if !hasValueFold(e, "description", ouDescription(tenant)) {
		return ouForeign, nil
	}
	var owners []string
	for _, v := range e.GetEqualFoldAttributeValues("description") {
		if len(v) > len(ownerDescPrefix) && strings.EqualFold(v[:len(ownerDescPrefix)], ownerDescPrefix) {
			owners = append(owners, v[len(ownerDescPrefix):])
		}
	}
	switch {
	case owner == "":
		return ouOurs, owners
	case len(owners) == 0:
		return ouLegacy, nil
	case len(owners) == 1 && strings.EqualFold(owners[0], owner):
		return ouOurs, owners
	}
	return ouOtherRun, owners
}

// readOU returns the tenant's OU with its descriptions, nil when absent.
func readOU(s *session, dn string) (*goldap.Entry, error) {
	res, err := s.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectClass", "description"}, nil))
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(res.Entries) != 1 {
		return nil, fmt.Errorf("read %s: %d entries returned", dn, len(res.Entries))
	}
	return res.Entries[0], nil
}

// notOurs refuses an OU of the tenant that another provisioning made (or,
// without Adopt, one from before runs were stamped).
func notOurs(tenant, owner, dn string, owners []string) error {
	madeBy := strings.Join(owners, ", ")
	if len(owners) == 0 {
		madeBy = "none: made before runs were stamped"
	}
	msg := fmt.Sprintf("LDAP directory %s exists but was not made by this provisioning of %s (owner %q, made by %q): is the tenant already deployed?",
		dn, tenant, owner, madeBy)
	return temporal.NewNonRetryableApplicationError(msg, ErrResourceNotOurs, nil)
}

// claim takes over the tenant's OU from before runs were stamped: it gets
// the run's description value, so every later call recognises it.
func (a *Activities) claim(ctx context.Context, s *session, log *slog.Logger, dn, owner string) error {
	err := s.Modify(&goldap.ModifyRequest{DN: dn, Changes: []goldap.Change{{
		Operation: goldap.AddAttribute, Modification: goldap.PartialAttribute{Type: "description", Vals: []string{ownerDescPrefix + owner}},
	}}})
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultAttributeOrValueExists) {
		return a.classify(ctx, "stamp "+dn+" with its owner", err)
	}
	log.Info("adopted the tenant's directory made before runs were stamped", "dn", dn, "owner", owner)
	return nil
}

// checkOwned decides whether a call of owner may work on the tenant's
// existing OU e: this run's is; a legacy one is with adopt (and claimed
// when stamp is set: without it, checkOwned changes nothing); another
// run's is refused with notOurs, one Tenantflow did not make with
// ErrEntryNotOurs.
func (a *Activities) checkOwned(ctx context.Context, s *session, log *slog.Logger, e *goldap.Entry, ref DirectoryRef, stamp bool) error {
	dn := a.ouDN(ref.Tenant)
	state, owners := ownershipOf(e, ref.Tenant, ref.Owner)
	switch {
	case state == ouOurs:
		return nil
	case state == ouLegacy && ref.Adopt:
		if stamp {
			return a.claim(ctx, s, log, dn, ref.Owner)
		}
		return nil
	case state == ouForeign:
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: entry exists without description %q; not made by Tenantflow, left unchanged", dn, ouDescription(ref.Tenant)), ErrEntryNotOurs, nil)
	}
	return notOurs(ref.Tenant, ref.Owner, dn, owners)
}

// refused says whether err is checkOwned's refusal of the OU, which the
// compensating calls log and treat as done.
func refused(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && (appErr.Type() == ErrResourceNotOurs || appErr.Type() == ErrEntryNotOurs)
}

// EnsureDirectory makes the tenant's OU, its admin account and its admin
// group, keeping whatever an earlier attempt already made, and (re)sets the
// admin's password to the given one on every call so that a retry, or a
// second provisioning with a new password, converges. The server hashes the
// password (RFC 3062 Password Modify); only if it refuses that operation is
// an {SSHA} hash computed here. Cleartext is never stored. Setting the
// password also undoes DisableAccounts for this account.
func (a *Activities) EnsureDirectory(ctx context.Context, in DirectoryInput) (Directory, error) {
	if err := in.validate(); err != nil {
		return Directory{}, err
	}
	d := a.names(in.Tenant, in.AdminUser)
	log := a.log.With("tenant", in.Tenant)
	s, err := a.connect(ctx)
	if err != nil {
		return Directory{}, err
	}
	defer s.Close()

	desc := ouDescription(in.Tenant)
	ou, err := ensureEntry(s, log, d.OU, []goldap.Attribute{
		{Type: "objectClass", Vals: []string{"top", "organizationalUnit"}},
		{Type: "ou", Vals: []string{in.Tenant}},
		{Type: "description", Vals: ouDescriptions(in.Tenant, in.Owner)},
	}, func(e *goldap.Entry) error {
		if !hasValueFold(e, "objectClass", "organizationalUnit") || !hasValueFold(e, "description", desc) {
			return fmt.Errorf("entry exists without objectClass organizationalUnit and description %q", desc)
		}
		return nil
	})
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return Directory{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("add %s: base DN %s (%s) does not exist", d.OU, a.cfg.BaseDN, envBaseDN), ErrBaseMissing, err)
	}
	if err != nil {
		return Directory{}, a.classify(ctx, "ensure "+d.OU, err)
	}
	if ou != nil {
		// The OU was there: its users and group are its owner's.
		if err := a.checkOwned(ctx, s, log, ou, DirectoryRef{Tenant: in.Tenant, Owner: in.Owner, Adopt: in.Adopt}, true); err != nil {
			return Directory{}, err
		}
	}

	_, err = ensureEntry(s, log, d.Admin, []goldap.Attribute{
		{Type: "objectClass", Vals: []string{"top", "person", "organizationalPerson", "inetOrgPerson"}},
		{Type: "uid", Vals: []string{in.AdminUser}},
		{Type: "cn", Vals: []string{in.AdminUser}},
		{Type: "sn", Vals: []string{in.AdminUser}},
		{Type: "description", Vals: []string{"Administrator of " + desc}},
	}, func(e *goldap.Entry) error {
		if !hasValueFold(e, "objectClass", "inetOrgPerson") {
			return fmt.Errorf("entry exists without objectClass inetOrgPerson")
		}
		return nil
	})
	if err != nil {
		return Directory{}, a.classify(ctx, "ensure "+d.Admin, err)
	}
	if err := a.setPassword(ctx, s, log, d.Admin, in.AdminPassword); err != nil {
		return Directory{}, err
	}

	group, err := ensureEntry(s, log, d.Group, []goldap.Attribute{
		{Type: "objectClass", Vals: []string{"top", "groupOfNames"}},
		{Type: "cn", Vals: []string{in.Tenant + "-admins"}},
		{Type: "member", Vals: []string{d.Admin}},
		{Type: "description", Vals: []string{"Administrators of " + desc}},
	}, func(e *goldap.Entry) error {
		if !hasValueFold(e, "objectClass", "groupOfNames") {
			return fmt.Errorf("entry exists without objectClass groupOfNames")
		}
		return nil
	})
	if err != nil {
		return Directory{}, a.classify(ctx, "ensure "+d.Group, err)
	}
	if group != nil && !hasMember(group, d.Admin) {
		err := s.Modify(&goldap.ModifyRequest{DN: d.Group, Changes: []goldap.Change{{
			Operation: goldap.AddAttribute, Modification: goldap.PartialAttribute{Type: "member", Vals: []string{d.Admin}},
		}}})
		if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultAttributeOrValueExists) {
			return Directory{}, a.classify(ctx, "add member "+d.Admin+" to "+d.Group, err)
		}
		log.Info("admin added to existing group", "dn", d.Group, "member", d.Admin)
	}
	return d, nil
}

// ensureEntry adds an entry, or, when it exists already, checks with
// isOurs that it is the one Tenantflow makes and returns it. An entry that is
// not ours is never changed: that is a non-retryable ErrEntryNotOurs for an
// operator to sort out.
func ensureEntry(s *session, log *slog.Logger, dn string, attrs []goldap.Attribute, isOurs func(*goldap.Entry) error) (*goldap.Entry, error) {
	err := s.Add(&goldap.AddRequest{DN: dn, Attributes: attrs})
	if err == nil {
		log.Info("directory entry created", "dn", dn)
		return nil, nil
	}
	if !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
		return nil, err
	}
	res, err := s.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"objectClass", "description", "member"}, nil))
	if err != nil {
		return nil, fmt.Errorf("read existing entry: %w", err)
	}
	if len(res.Entries) != 1 {
		return nil, fmt.Errorf("read existing entry: %d entries returned", len(res.Entries))
	}
	if err := isOurs(res.Entries[0]); err != nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: %v; not made by Tenantflow, left unchanged", dn, err), ErrEntryNotOurs, nil)
	}
	log.Debug("directory entry exists", "dn", dn)
	return res.Entries[0], nil
}

func hasValueFold(e *goldap.Entry, attr, want string) bool {
	return slices.ContainsFunc(e.GetEqualFoldAttributeValues(attr), func(v string) bool { return strings.EqualFold(v, want) })
}

// hasMember compares DNs as DNs: the server may return "UID=x, OU=…".
func hasMember(e *goldap.Entry, dn string) bool {
	want, err := goldap.ParseDN(dn)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(e.GetEqualFoldAttributeValues("member"), func(v string) bool {
		got, err := goldap.ParseDN(v)
		return err == nil && got.EqualFold(want)
	})
}

// setPassword has the server hash and store the password; if the server
// does not implement RFC 3062 it stores an {SSHA} hash made here.
func (a *Activities) setPassword(ctx context.Context, s *session, log *slog.Logger, dn, password string) error {
	_, err := s.PasswordModify(goldap.NewPasswordModifyRequest(dn, "", password))
	if err == nil {
		log.Info("admin password set", "dn", dn)
		return nil
	}
	if !goldap.IsErrorAnyOf(err, goldap.LDAPResultProtocolError, goldap.LDAPResultUnwillingToPerform,
		goldap.LDAPResultUnavailableCriticalExtension, goldap.LDAPResultNotSupported) {
		return a.classify(ctx, "set password of "+dn, err)
	}
	log.Info("server refused the Password Modify operation, storing a client-side {SSHA} hash", "dn", dn, "reason", err.Error())
	if err := storeSSHA(s.Conn, dn, password); err != nil {
		return a.classify(ctx, "set password of "+dn, err)
	}
	return nil
}

// storeSSHA replaces userPassword with a salted hash of password.
func storeSSHA(conn *goldap.Conn, dn, password string) error {
	hash, err := hashSSHA(password)
	if err != nil {
		return err
	}
	return conn.Modify(&goldap.ModifyRequest{DN: dn, Changes: []goldap.Change{{
		Operation: goldap.ReplaceAttribute, Modification: goldap.PartialAttribute{Type: "userPassword", Vals: []string{hash}},
	}}})
}

// RemoveDirectory deletes the tenant's OU and everything below it, deepest
// entries first (LDAP deletes leaves only). Whatever is already gone counts as
// removed, so a retry after a partial removal finishes the job. Only an OU
// of this run (or, with Adopt, of the tenant from before runs were stamped)
// is removed: one that Tenantflow did not make, or another run made, is left
// alone with a warning. This runs as compensation, also after
// EnsureDirectory refused someone else's OU.
func (a *Activities) RemoveDirectory(ctx context.Context, in DirectoryRef) error {
	if err := in.validate(); err != nil {
		return err
	}
	ou := a.ouDN(in.Tenant)
	log := a.log.With("tenant", in.Tenant, "owner", in.Owner)
	s, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()

	top, err := readOU(s, ou)
	if err != nil {
		return a.classify(ctx, "read "+ou, err)
	}
	if top == nil {
		log.Info("directory already removed", "dn", ou)
		return nil
	}
	if err := a.checkOwned(ctx, s, log, top, in, false); err != nil {
		log.Warn("not removing a directory this provisioning did not create", "dn", ou, "reason", err.Error())
		return nil
	}
	res, err := s.SearchWithPaging(goldap.NewSearchRequest(ou, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil), 500)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		log.Info("directory already removed", "dn", ou)
		return nil
	}
	if err != nil {
		return a.classify(ctx, "list "+ou, err)
	}
	dns := make([]string, 0, len(res.Entries))
	for _, e := range res.Entries {
		dns = append(dns, e.DN)
	}
	slices.SortStableFunc(dns, func(x, y string) int { return depth(y) - depth(x) })
	for _, dn := range dns {
		err := s.Del(goldap.NewDelRequest(dn, nil))
		if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			return a.classify(ctx, "delete "+dn, err)
		}
	}
	log.Info("directory removed", "dn", ou, "entries", len(dns))
	return nil
}

// depth is the number of RDNs of dn (a DN the server returned).
func depth(dn string) int {
	if d, err := goldap.ParseDN(dn); err == nil {
		return len(d.RDNs)
	}
	return strings.Count(dn, ",") + 1
}
