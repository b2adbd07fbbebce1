package docker_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

func TestVolumeDirsAndScratchVolumes(t *testing.T) {
	if os.Geteuid() != 0 {
		harness.Unavailable(t, "reading Docker volume mountpoints needs root")
	}
	d, tenant := demoTenant(t, "vol")
	ctx := context.Background()
	require.NoError(t, d.CreateVolumes(ctx, tenant, "run-1", []string{"data"}))

	dir, err := d.VolumeDir(ctx, tenant, "run-1", "data")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x"), []byte("kept"), 0o600))
	_, err = d.VolumeDir(ctx, tenant, "run-2", "data")
	requireType(t, err, runtimes.ErrResourceNotOurs)
	_, err = d.VolumeDir(ctx, tenant, "run-1", "missing")
	requireType(t, err, docker.ErrVolumeNotAccessible)

	scratch, err := d.ScratchVolume(ctx, tenant, "data-verify")
	require.NoError(t, err)
	require.NotEqual(t, dir, scratch)
	require.NoError(t, os.WriteFile(filepath.Join(scratch, "leftover"), []byte("x"), 0o600))
	again, err := d.ScratchVolume(ctx, tenant, "data-verify")
	require.NoError(t, err)
	left, err := os.ReadDir(again)
	require.NoError(t, err)
	require.Empty(t, left, "a scratch volume starts empty")
	require.NoError(t, d.RemoveScratchVolume(ctx, tenant, "data-verify"))
	require.NoError(t, d.RemoveScratchVolume(ctx, tenant, "data-verify"), "gone already is fine")
	require.Equal(t, []string{"volume " + docker.VolumeName(tenant, "data")}, residue(t, d, tenant))
	b, err := os.ReadFile(filepath.Join(dir, "x"))
	require.NoError(t, err)
	require.Equal(t, "kept", string(b), "scratch volumes never touch the tenant's own")
}

func requireType(t *testing.T, err error, typ string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, typ, appErr.Type())
}

func TestDumpToolsRunInServicesAndScratchInstances(t *testing.T) {
	d, tenant := demoTenant(t, "dmp")
	env := defaultEnv(t, tenant)
	ep, _ := provision(t, d, env)
	ctx := context.Background()
	for range 2 {
		resp, err := http.Post(ep.URL+"/hits", "text/plain", nil)
		require.NoError(t, err)
		resp.Body.Close()
	}
	var db spec.Service
	for _, s := range env.Services {
		if s.Name == "db" {
			db = s
		}
	}
	require.NotNil(t, db.Backup, "the default template dumps its db")

	var dump bytes.Buffer
	require.NoError(t, d.ExecInService(ctx, tenant, "run-1", db, db.Backup.Dump, nil, &dump))
	require.JSONEq(t, `{"hits":"2"}`, dump.String())

	// A scratch instance, without network, on its own scratch volumes.
	require.NoError(t, d.StartScratchInstance(ctx, tenant, db))
	require.NoError(t, d.ExecInScratchInstance(ctx, tenant, db, db.Backup.Restore, bytes.NewReader(dump.Bytes()), io.Discard))
	var again bytes.Buffer
	require.NoError(t, d.ExecInScratchInstance(ctx, tenant, db, db.Backup.Dump, nil, &again))
	require.Equal(t, dump.String(), again.String())
	err := d.ExecInScratchInstance(ctx, tenant, db, db.Backup.Restore, strings.NewReader("not a dump"), io.Discard)
	requireType(t, err, docker.ErrServiceCommandFailed)
	require.Contains(t, err.Error(), "bad dump")
	require.NoError(t, d.RemoveScratchInstance(ctx, tenant, db))
	require.NoError(t, d.RemoveScratchInstance(ctx, tenant, db), "nothing to remove is fine")
	require.Len(t, residue(t, d, tenant), 2+2+1, "the scratch instance and its volumes are gone")

	// The live db is untouched by all of that.
	dump.Reset()
	require.NoError(t, d.ExecInService(ctx, tenant, "run-1", db, db.Backup.Dump, nil, &dump))
	require.JSONEq(t, `{"hits":"2"}`, dump.String())
}
