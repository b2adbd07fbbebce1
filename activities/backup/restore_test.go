package backup

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// retained is a decommissioned tenant: its "data" volume archived, its db
// dumped, both volumes still holding their data.
func retained(t *testing.T) (*Activities, *dumpHost, BackupRef) {
	t.Helper()
	ctx := context.Background()
	host := &dumpHost{dirHost: newHost(t), live: map[string]string{"hits": "3"}}
	makeTree(t, host.volume(t, tenant, "data"))
	require.NoError(t, os.WriteFile(filepath.Join(host.volume(t, tenant, "dbdata"), "PG_VERSION"), []byte("17\n"), 0o600))
	a := newActivities(t, host)
	require.NoError(t, a.DumpServices(ctx, DumpInput{Tenant: tenant, Owner: "run-1", ID: "r1", Services: []spec.Service{dbService}}))
	in := backupInput("r1", "data")
	in.Dumps = []string{"db"}
	b, err := a.BackupVolumes(ctx, in)
	require.NoError(t, err)
	ref := refOf(b)
	ref.Dumps = []spec.Service{dbService}
	return a, host, ref
}

// flipByte flips one byte of the file in the middle.
func flipByte(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[len(data)/2] ^= 0x40
	require.NoError(t, os.WriteFile(path, data, 0o600))
}

// The retained volumes are a good copy of the data: a restore from a
// backup that is not what was written (or not there) fails without
// touching them.
func TestRestoreLeavesTheVolumesAloneUnlessTheBackupIsProven(t *testing.T) {
	for name, c := range map[string]struct {
		damage  func(t *testing.T, dir string)
		errType string
	}{
		"truncated archive": {func(t *testing.T, dir string) {
			require.NoError(t, os.Truncate(filepath.Join(dir, "data.tar"), 20000))
		}, ErrVerificationFailed},
		"bit-flipped archive": {func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, "data.tar")) }, ErrVerificationFailed},
		"bit-flipped dump":    {func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, "db.dump")) }, ErrVerificationFailed},
		"unmounted location": {func(t *testing.T, dir string) {
			// The share's mountpoint is there, empty.
			location := filepath.Dir(filepath.Dir(dir))
			require.NoError(t, os.Rename(location, location+".away"))
			require.NoError(t, os.Mkdir(location, 0o700))
		}, ErrBackupNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			a, host, ref := retained(t)
			// Make the retained data volume differ, so a restore would
			// refill it.
			data := filepath.Join(host.vols, tenant, "data")
			require.NoError(t, os.WriteFile(filepath.Join(data, "new.txt"), []byte("new"), 0o644))
			before := map[string]map[string]string{"data": tree(t, data), "dbdata": tree(t, filepath.Join(host.vols, tenant, "dbdata"))}
			c.damage(t, a.location(tenant, ref.ID))

			_, err := a.RestoreVolumes(context.Background(), ref)
			harness.RequireNonRetryable(t, err, c.errType)
			t.Log(err)
			for vol, want := range before {
				require.Equal(t, want, tree(t, filepath.Join(host.vols, tenant, vol)), "volume %s was touched", vol)
			}
		})
	}
}

// A retained volume that already holds the backup is left as it is; one
// that differs, if only in a file's content, is refilled.
func TestRestoreKeepsAVolumeThatMatches(t *testing.T) {
	ctx := context.Background()
	a, host, ref := retained(t)
	data := filepath.Join(host.vols, tenant, "data")
	want := tree(t, data)
	f, err := os.Open(filepath.Join(data, "a/b/big.bin"))
	require.NoError(t, err)
	defer f.Close()
	held, err := f.Stat()
	require.NoError(t, err)

	v, err := a.RestoreVolumes(ctx, ref)
	require.NoError(t, err)
	now, err := os.Stat(filepath.Join(data, "a/b/big.bin"))
	require.NoError(t, err)
	require.True(t, os.SameFile(held, now), "the matching volume was refilled")
	require.Equal(t, want, tree(t, data))
	require.Equal(t, readManifest(t, a.location(tenant, ref.ID)).Volumes[0].Files, v.Files, "its files were compared")
	require.Empty(t, listDir(t, filepath.Join(host.vols, tenant, "dbdata")), "the dumped db's volume starts empty")

	// Same size, same time, other content: refilled.
	path := filepath.Join(data, "a/b/c.txt")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte("HELLO\n"), 0o644))
	require.NoError(t, os.Chtimes(path, fi.ModTime(), fi.ModTime()))
	_, err = a.RestoreVolumes(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, want, tree(t, data))
	now, err = os.Stat(filepath.Join(data, "a/b/big.bin"))
	require.NoError(t, err)
	require.False(t, os.SameFile(held, now), "the differing volume was refilled")
}

// A dumped service's volume is emptied for its dump to be loaded: without
// a dump of it in the backup (nor an archive of the volume) the restore
// refuses before touching any volume.
func TestRestoreNeverEmptiesAVolumeItCannotRefill(t *testing.T) {
	a, host, ref := retained(t)
	cache := host.volume(t, tenant, "cachedata")
	require.NoError(t, os.WriteFile(filepath.Join(cache, "state"), []byte("kept"), 0o600))
	ref.Dumps = append(ref.Dumps, spec.Service{Name: "cache", Mounts: []spec.Mount{{Volume: "cachedata", Path: "/data"}}, Backup: dbService.Backup})
	before := map[string]map[string]string{}
	for _, vol := range []string{"data", "dbdata", "cachedata"} {
		before[vol] = tree(t, filepath.Join(host.vols, tenant, vol))
	}
	_, err := a.RestoreVolumes(context.Background(), ref)
	harness.RequireNonRetryable(t, err, ErrInvalidInput)
	require.ErrorContains(t, err, "cachedata")
	for vol, want := range before {
		require.Equal(t, want, tree(t, filepath.Join(host.vols, tenant, vol)), "volume %s was touched", vol)
	}
}
