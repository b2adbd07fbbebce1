package restic

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// keyLen is the length of a key file: 32 random bytes in hex.
const keyLen = 64

func (a *Activities) keyPath(tenant string) string {
	return filepath.Join(a.Config.Keys, tenant+".key")
}

func (a *Activities) repoPath(tenant string) string {
	return filepath.Join(a.Config.Repos, tenant)
}

// local is the tenant's repository on this worker's Repos.
func (a *Activities) local(tenant string) repository {
	p := a.repoPath(tenant)
	return repository{location: p, name: p, key: a.keyPath(tenant)}
}

// offsite is the tenant's repository on the off-site server; the
// credential is in its location only. Its name carries a digest of the
// tenant's key, <tenant>-<12 hex>: the append-only server keeps an
// erased tenant's repository (unreadable without its key), and a new
// tenant of the same name, with a new key, gets a repository of its own.
func (a *Activities) offsite(tenant string) (repository, error) {
	u, err := url.Parse(a.Config.OffsiteURL)
	if err != nil {
		return repository{}, fmt.Errorf("%s is not a URL", EnvOffsiteURL)
	}
	key, err := os.ReadFile(a.keyPath(tenant))
	if errors.Is(err, os.ErrNotExist) {
		return repository{}, keyGone(tenant, "the off-site repository")
	}
	if err != nil {
		return repository{}, fmt.Errorf("key of tenant %s: %w", tenant, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + a.Config.OffsiteUser + "/" + OffsiteName(tenant, key) + "/"
	name := u.String()
	u.User = url.UserPassword(a.Config.OffsiteUser, a.Config.OffsitePassword)
	return repository{location: "rest:" + u.String(), name: name, key: a.keyPath(tenant)}, nil
}

// keyGone is the error of a repository whose key was erased.
func keyGone(tenant, where string) error {
	msg := fmt.Sprintf("the key of tenant %s is erased: its backups in %s are unreadable", tenant, where)
	return temporal.NewNonRetryableApplicationError(msg, ErrKeyGone, nil)
}

// checkKey fails when the tenant's key file is missing (ErrKeyGone) or is
// not one this package wrote.
func (a *Activities) checkKey(tenant, where string) error {
	fi, err := os.Stat(a.keyPath(tenant))
	if errors.Is(err, os.ErrNotExist) {
		return keyGone(tenant, where)
	}
	if err != nil {
		return fmt.Errorf("key of tenant %s: %w", tenant, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() != keyLen {
		msg := fmt.Sprintf("the key file %s of tenant %s is not %d hex digits: restore it from the keys' backup", a.keyPath(tenant), tenant, keyLen)
		return temporal.NewNonRetryableApplicationError(msg, ErrKeyGone, nil)
	}
	return nil
}

// existingLocal returns the tenant's local repository; false when there
// is none; ErrKeyGone when it exists but its key does not.
func (a *Activities) existingLocal(tenant string) (repository, bool, error) {
	r := a.local(tenant)
	if _, err := os.Stat(r.location); errors.Is(err, os.ErrNotExist) {
		return r, false, nil
	} else if err != nil {
		return r, false, fmt.Errorf("repository of tenant %s: %w", tenant, err)
	}
	if err := a.checkKey(tenant, r.name); err != nil {
		return r, false, err
	}
	return r, true, nil
}

// ensureLocal returns the tenant's local repository, making its key and
// the repository first when they are missing. The caller holds the
// tenant's lock. Both steps survive a crash at any point: the key
// appears whole (written, fsynced, then linked into place), and the
// repository is initialised in a directory of its own that is renamed to
// <Repos>/<tenant> once complete. A repository without its key stays
// unreadable for ever (ErrKeyGone): a new key is made only when there is
// no repository.
func (a *Activities) ensureLocal(ctx context.Context, tenant string) (repository, error) {
	r, ok, err := a.existingLocal(tenant)
	if err != nil || ok {
		return r, err
	}
	if err := a.ensureKey(tenant); err != nil {
		return r, err
	}
	if err := a.checkKey(tenant, r.name); err != nil {
		return r, err
	}
	removeLeftovers(a.Config.Repos, ".init."+tenant+".")
	tmp, err := os.MkdirTemp(a.Config.Repos, ".init."+tenant+".")
	if err != nil {
		return r, fmt.Errorf("repository of tenant %s: %w", tenant, err)
	}
	defer os.RemoveAll(tmp) // gone after the rename
	init := repository{location: tmp, name: r.name + " (being initialised)", key: r.key}
	if _, err := a.run(ctx, command{repo: init, args: []string{"init"}}); err != nil {
		return r, err
	}
	if err := syncTree(tmp); err != nil {
		return r, fmt.Errorf("repository of tenant %s: %w", tenant, err)
	}
	if err := os.Rename(tmp, r.location); err != nil {
		return r, fmt.Errorf("repository of tenant %s: %w", tenant, err)
	}
	if err := syncDir(a.Config.Repos); err != nil {
		return r, err
	}
	a.log().Info("repository initialised", "tenant", tenant, "repository", r.name)
	return r, nil
}

// ensureKey makes the tenant's key when it has none: 32 bytes from
// crypto/rand, in hex, mode 0600. The key is written to a temporary file
// and fsynced before it is linked to <tenant>.key (link fails when the
// name exists, as O_EXCL does), so the key file is never partial and
// never replaced.
func (a *Activities) ensureKey(tenant string) error {
	path := a.keyPath(tenant)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	prefix := "." + tenant + ".key.tmp-"
	removeLeftovers(a.Config.Keys, prefix)
	raw := make([]byte, keyLen/2)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("key of tenant %s: %w", tenant, err)
	}
	f, err := os.CreateTemp(a.Config.Keys, prefix)
	if err != nil {
		return fmt.Errorf("key of tenant %s: %w", tenant, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("key of tenant %s: %w", tenant, err)
	}
	if _, err := f.WriteString(hex.EncodeToString(raw)); err != nil {
		f.Close()
		return fmt.Errorf("key of tenant %s: write %s: %w", tenant, tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("key of tenant %s: fsync %s: %w", tenant, tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("key of tenant %s: close %s: %w", tenant, tmp, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("key of tenant %s: %w", tenant, err)
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("key of tenant %s: %w", tenant, err)
	}
	if err := syncDir(a.Config.Keys); err != nil {
		return err
	}
	a.log().Info("key made", "tenant", tenant, "key", path)
	return nil
}

// removeLeftovers removes what a crashed attempt left in dir under prefix
// (a key never linked, a repository never renamed).
func removeLeftovers(dir, prefix string) {
	names, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, n := range names {
		if strings.HasPrefix(n.Name(), prefix) {
			_ = os.RemoveAll(filepath.Join(dir, n.Name()))
		}
	}
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// syncTree fsyncs the directories of a new repository (restic fsyncs the
// files it writes), so that its rename never makes durable a repository
// whose entries are not.
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncDir(path)
	})
}

// EraseBackups makes every copy of the tenant's backups unreadable: it
// deletes the tenant's key (durably: the directory is fsynced), then
// removes its local repository. The off-site copy stays on the
// append-only server, encrypted with the key nobody holds any more. A
// retry, or an erasure of a tenant without backups, does nothing more.
func (a *Activities) EraseBackups(ctx context.Context, in EraseInput) error {
	if err := a.enabled(); err != nil {
		return err
	}
	if err := validTenant(in.Tenant); err != nil {
		return err
	}
	p, stop := a.track(ctx, "erase the backups of "+in.Tenant)
	defer stop()
	unlock, err := a.lockTenant(ctx, in.Tenant, p)
	if err != nil {
		return err
	}
	defer unlock()
	key := a.keyPath(in.Tenant)
	keyErr := os.Remove(key)
	if keyErr != nil && !errors.Is(keyErr, os.ErrNotExist) {
		return fmt.Errorf("erase the key of tenant %s: %w", in.Tenant, keyErr)
	}
	removeLeftovers(a.Config.Keys, "."+in.Tenant+".key.tmp-")
	if err := syncDir(a.Config.Keys); err != nil {
		return fmt.Errorf("erase the key of tenant %s: %w", in.Tenant, err)
	}
	repo := a.repoPath(in.Tenant)
	if err := os.RemoveAll(repo); err != nil {
		return fmt.Errorf("remove the repository of tenant %s: %w", in.Tenant, err)
	}
	removeLeftovers(a.Config.Repos, ".init."+in.Tenant+".")
	if err := os.RemoveAll(filepath.Join(a.Config.Repos, startedDir, in.Tenant)); err != nil {
		return fmt.Errorf("erase the backup marks of tenant %s: %w", in.Tenant, err)
	}
	if err := syncDir(a.Config.Repos); err != nil {
		return fmt.Errorf("remove the repository of tenant %s: %w", in.Tenant, err)
	}
	if keyErr == nil {
		a.log().Info("backups erased: key deleted, local repository removed", "tenant", in.Tenant, "key", key, "repository", repo)
	}
	return nil
}

// OffsiteName is the name of the tenant's off-site repository, given its
// key (the content of <Keys>/<tenant>.key).
func OffsiteName(tenant string, key []byte) string {
	sum := sha256.Sum256(key)
	return tenant + "-" + hex.EncodeToString(sum[:6])
}
