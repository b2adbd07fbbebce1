package spec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustWindow(t *testing.T, s string) Window {
	t.Helper()
	w, err := ParseWindow(s)
	require.NoError(t, err, s)
	return w
}

func TestWindowCanonicalForm(t *testing.T) {
	for in, want := range map[string]string{
		"Sun 02:00-05:00 Europe/Paris":     "Sun 02:00-05:00 Europe/Paris",
		"sun 02:00–05:00 Europe/Paris":     "Sun 02:00-05:00 Europe/Paris",
		"Sat,Sun 23:00-01:00 UTC":          "Sat,Sun 23:00-01:00 UTC",
		"Mon-Fri 12:00-13:30 Asia/Tokyo":   "Mon,Tue,Wed,Thu,Fri 12:00-13:30 Asia/Tokyo",
		"Fri-Mon 00:00-06:00 UTC":          "Mon,Fri,Sat,Sun 00:00-06:00 UTC",
		"daily 03:00-04:00 America/Denver": "daily 03:00-04:00 America/Denver",
		"Mon-Sun 03:00-04:00 UTC":          "daily 03:00-04:00 UTC",
	} {
		w := mustWindow(t, in)
		require.Equal(t, want, w.String(), in)
		require.Equal(t, want, mustWindow(t, w.String()).String(), "the canonical form reads back")
	}
}

func TestWindowErrorsSayWhatIsWrong(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "is not a maintenance window",
		"Sunday 02:00-05:00 UTC":         `day "Sunday"`,
		"Sun 02:00 UTC":                  `hours "02:00"`,
		"Sun 2:00-05:00 UTC":             `time "2:00"`,
		"Sun 02:00-24:00 UTC":            `time "24:00"`,
		"Sun 02:00-02:00 UTC":            "must last",
		"Sun 02:00-05:00 Mars/Olympus":   `time zone "Mars/Olympus" is unknown`,
		"Sun 02:00-05:00 Local":          "name the zone",
		"Sun 02:00-05:00 Europe/Paris x": "is not a maintenance window",
	} {
		_, err := ParseWindow(in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestWindowOpensAndCloses(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	w := mustWindow(t, "Sun 02:00-05:00 Europe/Paris")
	// Monday 7 December 2026, noon in Paris: next Sunday, the 13th.
	open, opens, closes := w.At(time.Date(2026, 12, 7, 12, 0, 0, 0, paris))
	require.False(t, open)
	require.Equal(t, time.Date(2026, 12, 13, 2, 0, 0, 0, paris), opens)
	require.Equal(t, time.Date(2026, 12, 13, 5, 0, 0, 0, paris), closes)
	// Inside it, and at its bounds: the start belongs to it, the end not.
	open, opens, closes = w.At(time.Date(2026, 12, 13, 2, 0, 0, 0, paris))
	require.True(t, open)
	require.Equal(t, time.Date(2026, 12, 13, 2, 0, 0, 0, paris), opens)
	require.Equal(t, time.Date(2026, 12, 13, 5, 0, 0, 0, paris), closes)
	open, opens, _ = w.At(time.Date(2026, 12, 13, 5, 0, 0, 0, paris))
	require.False(t, open)
	require.Equal(t, time.Date(2026, 12, 20, 2, 0, 0, 0, paris), opens, "closed at its end: a week to the next")
}

func TestWindowAcrossMidnight(t *testing.T) {
	w := mustWindow(t, "Sat 23:00-01:00 UTC")
	// Sunday 00:30 is in Saturday's window, which began the day before.
	open, opens, closes := w.At(time.Date(2026, 12, 13, 0, 30, 0, 0, time.UTC))
	require.True(t, open)
	require.Equal(t, time.Date(2026, 12, 12, 23, 0, 0, 0, time.UTC), opens)
	require.Equal(t, time.Date(2026, 12, 13, 1, 0, 0, 0, time.UTC), closes)
	// Sunday 01:00 it has closed; the next is Saturday the 19th.
	open, opens, _ = w.At(time.Date(2026, 12, 13, 1, 0, 0, 0, time.UTC))
	require.False(t, open)
	require.Equal(t, time.Date(2026, 12, 19, 23, 0, 0, 0, time.UTC), opens)
}

func TestWindowKeepsLocalHoursAcrossDaylightSaving(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	w := mustWindow(t, "Sun 01:00-04:00 Europe/Paris")
	// 28 March 2027: the clocks go from 02:00 to 03:00. The window still
	// runs 01:00 to 04:00 local, two hours long that night.
	_, opens, closes := w.At(time.Date(2027, 3, 27, 12, 0, 0, 0, paris))
	require.Equal(t, time.Date(2027, 3, 28, 0, 0, 0, 0, time.UTC), opens.UTC())
	require.Equal(t, time.Date(2027, 3, 28, 2, 0, 0, 0, time.UTC), closes.UTC())
	// A start that does not exist that night opens after the gap.
	gap := mustWindow(t, "Sun 02:30-05:00 Europe/Paris")
	_, opens, _ = gap.At(time.Date(2027, 3, 27, 12, 0, 0, 0, paris))
	require.Equal(t, "03:30", opens.In(paris).Format("15:04"))
}

func TestWindowOnListedDaysOnly(t *testing.T) {
	w := mustWindow(t, "Mon-Fri 12:00-13:00 UTC")
	// Friday 11 December 2026 at 13:00: closed until Monday noon.
	open, opens, _ := w.At(time.Date(2026, 12, 11, 13, 0, 0, 0, time.UTC))
	require.False(t, open)
	require.Equal(t, time.Date(2026, 12, 14, 12, 0, 0, 0, time.UTC), opens)
	for d := 14; d <= 18; d++ {
		open, _, _ := w.At(time.Date(2026, 12, d, 12, 30, 0, 0, time.UTC))
		require.True(t, open, "December %d", d)
	}
}
