package restic

import (
	"slices"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/activities/spec"
)

func TestRetain(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	// Two backups a day on 2024-03-01 .. 03-03, none on 03-04, one on
	// 03-05 and 03-06; one a month earlier and one in the old year.
	series := []dated{
		{"dec", at("2023-12-31T12:00:00Z")},
		{"feb", at("2024-02-02T12:00:00Z")},
		{"1a", at("2024-03-01T06:00:00Z")}, {"1b", at("2024-03-01T18:00:00Z")},
		{"2a", at("2024-03-02T06:00:00Z")}, {"2b", at("2024-03-02T18:00:00Z")},
		{"3a", at("2024-03-03T06:00:00Z")}, {"3b", at("2024-03-03T18:00:00Z")},
		{"5", at("2024-03-05T12:00:00Z")},
		{"6", at("2024-03-06T12:00:00Z")},
	}
	for _, tc := range []struct {
		name    string
		backups []dated
		keep    spec.Keep
		loc     *time.Location
		pinned  []string
		kept    []string
	}{
		{name: "nothing", keep: spec.Keep{Last: 3}},
		{name: "last", backups: series, keep: spec.Keep{Last: 3}, kept: []string{"3b", "5", "6"}},
		{name: "more kept than there are", backups: series[:2], keep: spec.Keep{Last: 5}, kept: []string{"dec", "feb"}},
		// The newest of each of the last 4 days that have backups: 03-04
		// has none and does not count.
		{name: "daily", backups: series, keep: spec.Keep{Daily: 4}, kept: []string{"2b", "3b", "5", "6"}},
		// ISO weeks start on Monday: 03-03 is the Sunday of week 9, 03-05
		// and 03-06 are in week 10; 2023-12-31 is in week 52 of 2023.
		{name: "weekly", backups: series, keep: spec.Keep{Weekly: 3}, kept: []string{"feb", "3b", "6"}},
		{name: "monthly", backups: series, keep: spec.Keep{Monthly: 2}, kept: []string{"feb", "6"}},
		{name: "monthly across the year", backups: series, keep: spec.Keep{Monthly: 12}, kept: []string{"dec", "feb", "6"}},
		// As restic's forget: a backup kept as one of the last also
		// takes its day's place.
		{name: "last and daily overlap", backups: series, keep: spec.Keep{Last: 2, Daily: 3}, kept: []string{"3b", "5", "6"}},
		{name: "every rule", backups: series, keep: spec.Keep{Last: 1, Daily: 2, Weekly: 2, Monthly: 3},
			kept: []string{"dec", "feb", "3b", "5", "6"}},
		{name: "pinned", backups: series, keep: spec.Keep{Last: 1}, pinned: []string{"dec", "nope"}, kept: []string{"dec", "6"}},
		// 22:30 and 23:30 UTC on 03-04 are one day in UTC, two in Berlin
		// (23:30 on 03-04 and 00:30 on 03-05).
		{name: "day in UTC", backups: []dated{{"x", at("2024-03-03T12:00:00Z")}, {"y", at("2024-03-04T22:30:00Z")}, {"z", at("2024-03-04T23:30:00Z")}},
			keep: spec.Keep{Daily: 2}, loc: time.UTC, kept: []string{"x", "z"}},
		{name: "day in Berlin", backups: []dated{{"x", at("2024-03-03T12:00:00Z")}, {"y", at("2024-03-04T22:30:00Z")}, {"z", at("2024-03-04T23:30:00Z")}},
			keep: spec.Keep{Daily: 2}, loc: berlin, kept: []string{"y", "z"}},
		// Same time: the greater id counts as the newer, whatever the
		// input's order.
		{name: "ties", backups: []dated{{"b", at("2024-03-04T12:00:00Z")}, {"a", at("2024-03-04T12:00:00Z")}},
			keep: spec.Keep{Daily: 1}, kept: []string{"b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := tc.loc
			if loc == nil {
				loc = time.UTC
			}
			kept, forgotten := retain(tc.backups, tc.keep, loc, tc.pinned)
			if !slices.Equal(kept, tc.kept) {
				t.Errorf("kept %v, want %v", kept, tc.kept)
			}
			// Every backup is either kept or forgotten, oldest first.
			var all []string
			for _, b := range tc.backups {
				if !slices.Contains(kept, b.ID) {
					all = append(all, b.ID)
				}
			}
			if !slices.Equal(forgotten, all) {
				t.Errorf("forgot %v, want %v", forgotten, all)
			}
		})
	}
}
