package ldap

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
	"go.temporal.io/sdk/temporal"
)

// DisableAccounts locks every account below the tenant's OU so that it can
// no longer bind, without deleting anything: each userPassword value gets
// DisabledPrefix (see there). A decommissioned tenant can thus be brought
// back with EnableAccounts and the users' own passwords. Values already
// prefixed are left as they are, so a retry changes nothing; a directory that
// is gone has nothing left to lock, which is success.
//
// Only the accounts of this run's directory (or, with Adopt, of the
// tenant's directory from before runs were stamped) are locked: another
// run's are left alone with a warning.
//
// The bind DN must be able to read userPassword below the base DN: an
// account whose password it cannot see cannot be locked (and is logged).
func (a *Activities) DisableAccounts(ctx context.Context, in DirectoryRef) error {
	if err := in.validate(); err != nil {
		return err
	}
	log := a.log.With("tenant", in.Tenant, "owner", in.Owner)
	n, found, err := a.rewritePasswords(ctx, in, log, false, func(v string) string {
		if strings.HasPrefix(v, DisabledPrefix) {
			return v
		}
		return DisabledPrefix + v
	})
	if refused(err) {
		log.Warn("not disabling the accounts of a directory this provisioning did not create", "dn", a.ouDN(in.Tenant), "reason", err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	if !found {
		log.Info("directory absent, no accounts to disable", "dn", a.ouDN(in.Tenant))
		return nil
	}
	log.Info("accounts disabled", "dn", a.ouDN(in.Tenant), "changed", n)
	return nil
}

// EnableAccounts undoes DisableAccounts: the original password hashes are
// restored and the users bind with the passwords they had. Accounts that are
// not disabled are left alone. A missing directory is a non-retryable
// ErrDirectoryMissing: there is nothing to give back, and retrying cannot
// bring it back. Another run's directory is refused (ResourceNotOurs); the
// tenant's directory from before runs were stamped is taken over (stamped
// with this run) with Adopt only.
func (a *Activities) EnableAccounts(ctx context.Context, in DirectoryRef) error {
	if err := in.validate(); err != nil {
		return err
	}
	log := a.log.With("tenant", in.Tenant, "owner", in.Owner)
	n, found, err := a.rewritePasswords(ctx, in, log, true, func(v string) string {
		return strings.TrimPrefix(v, DisabledPrefix)
	})
	if err != nil {
		return err
	}
	if !found {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("enable accounts: directory %s does not exist", a.ouDN(in.Tenant)), ErrDirectoryMissing, nil)
	}
	log.Info("accounts enabled", "dn", a.ouDN(in.Tenant), "changed", n)
	return nil
}

// accountClasses are object classes of entries that may bind.
var accountClasses = []string{"person", "organizationalPerson", "inetOrgPerson", "simpleSecurityObject", "posixAccount"}

// rewritePasswords applies rewrite to every userPassword value below the
// tenant's OU and writes back the entries whose values changed, once the OU
// is known to be the call's (claimed from before runs were stamped when
// stamp is set); otherwise it changes nothing and answers checkOwned's
// refusal. found is false when the OU does not exist.
func (a *Activities) rewritePasswords(ctx context.Context, ref DirectoryRef, log *slog.Logger, stamp bool, rewrite func(string) string) (changed int, found bool, err error) {
	ou := a.ouDN(ref.Tenant)
	s, err := a.connect(ctx)
	if err != nil {
		return 0, false, err
	}
	defer s.Close()

	top, err := readOU(s, ou)
	if err != nil {
		return 0, false, a.classify(ctx, "read "+ou, err)
	}
	if top == nil {
		return 0, false, nil
	}
	if err := a.checkOwned(ctx, s, log, top, ref, stamp); err != nil {
		return 0, true, err
	}

	res, err := s.SearchWithPaging(goldap.NewSearchRequest(ou, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectClass", "userPassword"}, nil), 500)
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, a.classify(ctx, "list accounts below "+ou, err)
	}
	for _, e := range res.Entries {
		old := e.GetEqualFoldAttributeValues("userPassword")
		if len(old) == 0 {
			if slices.ContainsFunc(accountClasses, func(c string) bool { return hasValueFold(e, "objectClass", c) }) {
				log.Warn("account has no readable userPassword: left unchanged (does the bind DN have read access to it?)", "dn", e.DN)
			}
			continue
		}
		vals := make([]string, len(old))
		for i, v := range old {
			vals[i] = rewrite(v)
		}
		if slices.Equal(old, vals) {
			continue
		}
		err := s.Modify(&goldap.ModifyRequest{DN: e.DN, Changes: []goldap.Change{{
			Operation: goldap.ReplaceAttribute, Modification: goldap.PartialAttribute{Type: "userPassword", Vals: vals},
		}}})
		if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			continue // removed meanwhile
		}
		if err != nil {
			return changed, true, a.classify(ctx, "rewrite password of "+e.DN, err)
		}
		changed++
	}
	return changed, true, nil
}
