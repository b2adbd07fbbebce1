package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	// Windows name IANA zones; the binary carries their rules, so a host
	// without /usr/share/zoneinfo reads them the same.
	_ "time/tzdata"
)

// Window is a tenant's maintenance window: the weekly hours in which a
// release may cut it over, in a time zone, written
//
//	Sun 02:00-05:00 Europe/Paris
//	Sat,Sun 23:00-01:00 UTC       (crosses midnight: Sat 23:00 to Sun 01:00)
//	Mon-Fri 12:00-13:30 America/New_York
//	daily 03:00-04:00 Asia/Tokyo
//
// Hours are wall-clock hours of the zone: a window keeps its local hours
// across daylight-saving changes. A time that does not exist that day
// moves forward by the gap (02:30 on a spring-forward night of one hour
// is 03:30), so a window lying wholly inside the gap is empty that night.
// An end at or before the start ends on the next day.
type Window struct {
	Days  [7]bool // by time.Weekday
	Start int     // minutes after local midnight
	End   int
	Zone  string
	loc   *time.Location
}

// WindowExample is what a window's error messages show.
const WindowExample = `"<days> <HH:MM>-<HH:MM> <time zone>", e.g. "Sun 02:00-05:00 Europe/Paris" (days: Mon…Sun, a list "Sat,Sun", a range "Mon-Fri", or "daily")`

var weekdays = []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// ParseWindow reads a window (see Window); its error says what is wrong
// in words a form can show next to the field.
func ParseWindow(s string) (Window, error) {
	f := strings.Fields(strings.ReplaceAll(s, "–", "-"))
	if len(f) != 3 {
		return Window{}, fmt.Errorf("%q is not a maintenance window: want %s", s, WindowExample)
	}
	var w Window
	if err := w.parseDays(f[0]); err != nil {
		return Window{}, err
	}
	from, to, ok := strings.Cut(f[1], "-")
	if !ok {
		return Window{}, fmt.Errorf("hours %q: want <HH:MM>-<HH:MM>, e.g. 02:00-05:00", f[1])
	}
	var err error
	if w.Start, err = parseClock(from); err != nil {
		return Window{}, err
	}
	if w.End, err = parseClock(to); err != nil {
		return Window{}, err
	}
	if w.Start == w.End {
		return Window{}, fmt.Errorf("hours %q: the window must last (start and end are equal)", f[1])
	}
	if strings.EqualFold(f[2], "local") {
		return Window{}, fmt.Errorf("time zone %q: name the zone (an IANA name such as Europe/Paris, or UTC)", f[2])
	}
	if w.loc, err = time.LoadLocation(f[2]); err != nil {
		return Window{}, fmt.Errorf("time zone %q is unknown: use an IANA name such as Europe/Paris, or UTC", f[2])
	}
	w.Zone = w.loc.String()
	return w, nil
}

func (w *Window) parseDays(s string) error {
	if strings.EqualFold(s, "daily") {
		w.Days = [7]bool{true, true, true, true, true, true, true}
		return nil
	}
	for part := range strings.SplitSeq(s, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := weekday(from)
		if !ok {
			return fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat, Sun, a list (Sat,Sun), a range (Mon-Fri) or daily", from)
		}
		b := a
		if isRange {
			if b, ok = weekday(to); !ok {
				return fmt.Errorf("day %q: want Mon, Tue, Wed, Thu, Fri, Sat, Sun", to)
			}
		}
		// A range runs forward through the week: Fri-Mon is Fri, Sat,
		// Sun, Mon.
		for d := a; ; d = (d + 1) % 7 {
			w.Days[d] = true
			if d == b {
				break
			}
		}
	}
	return nil
}

func weekday(s string) (int, bool) {
	i := slices.IndexFunc(weekdays, func(d string) bool { return strings.EqualFold(d, s) })
	return i, i >= 0
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh > 23 || mm > 59 || hh < 0 || mm < 0 {
		return 0, fmt.Errorf("time %q: want HH:MM, 00:00 to 23:59", s)
	}
	return hh*60 + mm, nil
}

// String is the window's canonical form, which ParseWindow reads back.
func (w Window) String() string {
	days := "daily"
	if w.Days != [7]bool{true, true, true, true, true, true, true} {
		var names []string
		// Monday first, as people write weeks.
		for _, d := range []int{1, 2, 3, 4, 5, 6, 0} {
			if w.Days[d] {
				names = append(names, weekdays[d])
			}
		}
		days = strings.Join(names, ",")
	}
	return fmt.Sprintf("%s %02d:%02d-%02d:%02d %s", days, w.Start/60, w.Start%60, w.End/60, w.End%60, w.Zone)
}

// At tells whether the window is open at now: if so, since when and until
// when; if not, when it next opens and closes.
func (w Window) At(now time.Time) (open bool, opens, closes time.Time) {
	loc := w.loc
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := now.In(loc).Date()
	// The occurrence that began yesterday may still be open (a window
	// across midnight); every day has one within the next week.
	for off := -1; off <= 7; off++ {
		day := time.Date(y, m, d+off, 12, 0, 0, 0, loc)
		if !w.Days[day.Weekday()] {
			continue
		}
		start := time.Date(y, m, d+off, w.Start/60, w.Start%60, 0, 0, loc)
		endDay := d + off
		if w.End <= w.Start {
			endDay++
		}
		end := time.Date(y, m, endDay, w.End/60, w.End%60, 0, 0, loc)
		if !now.Before(start) && now.Before(end) {
			return true, start, end
		}
		if start.After(now) {
			return false, start, end
		}
	}
	return false, time.Time{}, time.Time{} // no day: ParseWindow never makes one
}
