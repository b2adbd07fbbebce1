package spec

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNextBackupDailyAtLocalTimeWithJitter(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	p := Backups{At: "02:00", TimeZone: "Europe/Paris", Jitter: Duration(time.Hour)}
	created := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	off := p.Offset("acme")
	require.Less(t, off, time.Hour)
	require.Equal(t, off, p.Offset("acme"), "a tenant's place in the window is fixed")

	first := p.NextBackup("acme", created, time.Time{}, paris)
	require.Equal(t, time.Date(2026, 12, 7, 2, 0, 0, 0, paris).Add(off).UTC(), first)
	// A backup delayed by a busy tenant does not shift the schedule.
	second := p.NextBackup("acme", created, first.Add(17*time.Minute), paris)
	require.Equal(t, first.AddDate(0, 0, 1), second)
	// Across the spring change of clocks the local time stays 02:xx.
	spring := p.NextBackup("acme", created, time.Date(2027, 3, 27, 2, 30, 0, 0, paris), paris)
	require.Equal(t, 28, spring.In(paris).Day())
}

func TestNextBackupSpreadsTenants(t *testing.T) {
	p := Backups{At: "02:00", Jitter: Duration(2 * time.Hour)}
	created := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	seen := map[time.Time]bool{}
	for i := range 200 {
		seen[p.NextBackup("tenant-"+string(rune('a'+i%26))+string(rune('a'+i/26)), created, time.Time{}, nil)] = true
	}
	require.Greater(t, len(seen), 190, "200 tenants must not start together")
}

func TestNextBackupEveryInterval(t *testing.T) {
	p := Backups{Every: Duration(30 * time.Second)}
	created := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	require.Equal(t, created.Add(30*time.Second), p.NextBackup("t", created, time.Time{}, nil))
	// After a backup at +95s (slots +30, +60, +90), the next slot is +120.
	require.Equal(t, created.Add(120*time.Second), p.NextBackup("t", created, created.Add(95*time.Second), nil))
	// Every two days at 03:30 in UTC.
	q := Backups{Every: Duration(48 * time.Hour), At: "03:30"}
	last := time.Date(2026, 12, 7, 3, 30, 0, 0, time.UTC)
	require.Equal(t, last.AddDate(0, 0, 2), q.NextBackup("t", created, last, nil))
}

func TestBackupPolicyValidation(t *testing.T) {
	for p, field := range map[*Backups]string{
		{Every: Duration(time.Second)}:            "backups.every",
		{At: "25:00"}:                             "backups.at",
		{At: "02:00", Every: Duration(time.Hour)}: "backups.at",
		{TimeZone: "Mars/Olympus"}:                "backups.timezone",
		{Jitter: Duration(25 * time.Hour)}:        "backups.jitter",
		{Keep: Keep{Daily: -1}}:                   "backups.keep",
		{DrillEvery: Duration(time.Second)}:       "backups.drillEvery",
	} {
		err := p.Validate("backups")
		var fe *FieldError
		require.True(t, errors.As(err, &fe), "%+v: %v", *p, err)
		require.Equal(t, field, fe.Field, err.Error())
	}
	require.NoError(t, Backups{At: "02:00", TimeZone: "Europe/Paris", Jitter: Duration(time.Hour), DrillEvery: Duration(168 * time.Hour)}.Validate("backups"))
}

func TestBackupPolicyJSON(t *testing.T) {
	var p Backups
	require.NoError(t, json.Unmarshal([]byte(`{"every":"24h","at":"02:00","jitter":"30m","keep":{"daily":7},"offsite":true,"drillEvery":"168h"}`), &p))
	require.Equal(t, Backups{Every: Duration(24 * time.Hour), At: "02:00", Jitter: Duration(30 * time.Minute),
		Keep: Keep{Daily: 7}, Offsite: true, DrillEvery: Duration(168 * time.Hour)}, p)
	out, err := json.Marshal(p)
	require.NoError(t, err)
	require.JSONEq(t, `{"every":"24h0m0s","at":"02:00","jitter":"30m0s","keep":{"daily":7},"offsite":true,"drillEvery":"168h0m0s"}`, string(out))

	for body, field := range map[string]string{
		`{"every":"daily"}`:      "every",
		`{"keep":{"daily":"7"}}`: "keep.daily",
		`{"schedule":"02:00"}`:   "schedule",
	} {
		err := json.Unmarshal([]byte(body), &p)
		var fe *FieldError
		require.True(t, errors.As(err, &fe), "%s: %v", body, err)
		require.Equal(t, field, fe.Field, body)
	}
}

func TestMergeOverridesOnlyWhatIsSet(t *testing.T) {
	tpl := Backups{Every: Duration(24 * time.Hour), At: "02:00", Keep: Keep{Daily: 7}}
	got := tpl.Merge(&Backups{Offsite: true, Keep: Keep{Daily: 30}})
	require.Equal(t, Backups{Every: Duration(24 * time.Hour), At: "02:00", Keep: Keep{Daily: 30}, Offsite: true}, got)
	require.Equal(t, tpl, tpl.Merge(nil))
	// An interval replaces the template's schedule, time of day and jitter.
	daily := Backups{At: "02:00", Jitter: Duration(2 * time.Hour), Keep: Keep{Daily: 7}}
	got = daily.Merge(&Backups{Every: Duration(10 * time.Second)})
	require.Equal(t, Backups{Every: Duration(10 * time.Second), Keep: Keep{Daily: 7}}, got)
	require.NoError(t, got.Validate("backups"))
	got = daily.Merge(&Backups{Every: Duration(48 * time.Hour), At: "03:00"})
	require.Equal(t, Backups{Every: Duration(48 * time.Hour), At: "03:00", Keep: Keep{Daily: 7}}, got)
}
