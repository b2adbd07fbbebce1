package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAnonymousCodecOnlyOnLoopback(t *testing.T) {
	tests := []struct {
		listen string
		ok     bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.2:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"LOCALHOST:8080", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"[::]:8080", false},
		{"192.0.2.10:8080", false},
		{"api.example.com:8080", false},
		{"127.0.0.1", false}, // no port: not an address we can judge
	}
	for _, tc := range tests {
		t.Run(tc.listen, func(t *testing.T) {
			assert.NoError(t, apiSettings{Listen: tc.listen}.checkCodec(), "no anonymous codec: any listener")
			err := apiSettings{Listen: tc.listen, CodecAnonymous: true}.checkCodec()
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "TENANTFLOW_CODEC_ALLOW_ANONYMOUS")
			assert.Contains(t, err.Error(), "TENANTFLOW_API_LISTEN")
		})
	}
}

// validAPISettings passes loadAPIFiles: the repository's templates and a
// tokens file.
func validAPISettings(t *testing.T) apiSettings {
	t.Helper()
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	require.NoError(t, os.WriteFile(tokens, []byte(`{"ops":"ops-token-0123456789"}`), 0o600))
	return apiSettings{Listen: "127.0.0.1:8080", TokensFile: tokens, TemplatesDir: "../../deploy/templates", Runtime: "docker"}
}

func TestLoadAPIFilesRefusesAnonymousCodecBeyondLoopback(t *testing.T) {
	a := validAPISettings(t)
	a.CodecAnonymous = true
	_, err := loadAPIFiles(a)
	require.NoError(t, err, "loopback")

	a.Listen = "0.0.0.0:8080"
	_, err = loadAPIFiles(a)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "TENANTFLOW_CODEC_ALLOW_ANONYMOUS")
	assert.Contains(t, err.Error(), `"0.0.0.0:8080"`)
}

func TestLoadAPIFilesRefusesABadReadWait(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, 6 * time.Second} {
		a := validAPISettings(t)
		a.ReadWait = d
		_, err := loadAPIFiles(a)
		require.Error(t, err, d)
		assert.Contains(t, err.Error(), "TENANTFLOW_API_READ_WAIT")
	}
	a := validAPISettings(t)
	a.ReadWait = 100 * time.Millisecond
	_, err := loadAPIFiles(a)
	require.NoError(t, err)
}

func TestDevCodecDefaults(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name          string
		in            apiSettings
		wantOrigins   string
		wantAnonymous bool
	}{
		{"loopback", apiSettings{Listen: "127.0.0.1:8080"}, "http://127.0.0.1:8233,http://localhost:8233", true},
		{"every interface", apiSettings{Listen: "0.0.0.0:8080"}, "http://127.0.0.1:8233,http://localhost:8233", false},
		{"own origins", apiSettings{Listen: "127.0.0.1:8080", CodecOrigins: "https://ui.example"}, "https://ui.example", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.in
			devCodecDefaults(&a, "http://127.0.0.1:8233", "8233", log)
			assert.Equal(t, tc.wantOrigins, a.CodecOrigins)
			assert.Equal(t, tc.wantAnonymous, a.CodecAnonymous)
			assert.NoError(t, a.checkCodec(), "dev's defaults always pass the check")
		})
	}
}

// The audit trail's settings are checked at start-up, each error naming
// its setting; without any, entries go to the log only.
func TestOpenAuditNamesTheBadSetting(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	_, err := openAudit(apiSettings{AuditRetention: time.Hour, AuditDir: t.TempDir()}, log)
	require.ErrorContains(t, err, "TENANTFLOW_AUDIT_RETENTION=1h0m0s must be at least 24h")

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = openAudit(apiSettings{AuditRetention: defaultAuditRetention, AuditDir: filepath.Join(file, "audit")}, log)
	require.ErrorContains(t, err, "TENANTFLOW_AUDIT_DIR")

	_, err = openAudit(apiSettings{AuditRetention: defaultAuditRetention, AuditDSN: "postgres://u:secret-pw@127.0.0.1:1/db?connect_timeout=1"}, log)
	require.ErrorContains(t, err, "TENANTFLOW_AUDIT_DSN")
	require.NotContains(t, err.Error(), "secret-pw", "the password is not printed")

	store, err := openAudit(apiSettings{AuditRetention: defaultAuditRetention}, log)
	require.NoError(t, err)
	require.Nil(t, store)
	store, err = openAudit(apiSettings{AuditRetention: defaultAuditRetention, AuditDir: filepath.Join(t.TempDir(), "audit")}, log)
	require.NoError(t, err)
	require.NotNil(t, store)
	require.NoError(t, store.Close())
}
