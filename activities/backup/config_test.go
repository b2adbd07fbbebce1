package backup

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/internal/config"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	s := config.New("test")
	c.Register(s)
	require.NoError(t, s.Parse(nil))
	require.Equal(t, Config{Dir: "", Retention: 720 * time.Hour}, c)
	require.False(t, c.Enabled())
	require.NoError(t, c.Validate(), "a disabled component is not validated")
	_, err := New(c, newHost(t), nil)
	require.ErrorContains(t, err, EnvDir)
}

func TestConfigFromEnvAndFlags(t *testing.T) {
	t.Setenv(EnvDir, "/srv/backups")
	t.Setenv(EnvRetention, "48h")
	var c Config
	s := config.New("test")
	c.Register(s)
	require.NoError(t, s.Parse(nil))
	require.Equal(t, Config{Dir: "/srv/backups", Retention: 48 * time.Hour}, c)
	require.True(t, c.Enabled())

	s = config.New("test")
	c.Register(s)
	require.NoError(t, s.Parse([]string{"-backup-dir", "/mnt/nfs/backups", "-backup-retention", "2h"}))
	require.Equal(t, Config{Dir: "/mnt/nfs/backups", Retention: 2 * time.Hour}, c)
}

func TestConfigValidateNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		envs []string
	}{
		{"relative dir", Config{Dir: "backups", Retention: time.Hour}, []string{EnvDir}},
		{"zero retention", Config{Dir: "/srv/backups"}, []string{EnvRetention}},
		{"negative retention", Config{Dir: "/srv/backups", Retention: -time.Hour}, []string{EnvRetention}},
		{"both", Config{Dir: "./b", Retention: 0}, []string{EnvDir, EnvRetention}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			require.Error(t, err)
			for _, env := range tc.envs {
				require.ErrorContains(t, err, env)
			}
			_, err = New(tc.cfg, newHost(t), nil)
			require.ErrorContains(t, err, tc.envs[0])
		})
	}
}

func TestNewNeedsAnExistingLocation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	_, err := New(Config{Dir: dir, Retention: time.Hour}, newHost(t), nil)
	require.ErrorContains(t, err, EnvDir, "a share that is not mounted is a start-up error")
	require.NoDirExists(t, dir)
	require.NoError(t, os.MkdirAll(dir, 0o700))
	a, err := New(Config{Dir: dir, Retention: time.Hour}, newHost(t), nil)
	require.NoError(t, err)
	require.NoError(t, Location{Config: a.Config}.Check(t.Context()))
	_, err = New(Config{Dir: dir, Retention: time.Hour}, nil, nil)
	require.Error(t, err)
}
