package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Backups is a template's backup policy: when its tenants are backed up,
// how long their backups are kept, whether each is copied off-site and
// how often a backup is proven by a restore drill. A tenant may override
// it at creation (see Backups.Merge).
type Backups struct {
	// Every is the time between two scheduled backups (default 24h).
	Every Duration `yaml:"every,omitempty" json:"every,omitempty"`
	// At is the local time of day ("02:00") of a daily backup in TimeZone;
	// it needs Every to be a whole number of days. Empty: Every after
	// the tenant's creation.
	At string `yaml:"at,omitempty" json:"at,omitempty"`
	// TimeZone is the IANA zone of At (default UTC).
	TimeZone string `yaml:"timezone,omitempty" json:"timezone,omitempty"`
	// Jitter spreads the tenants of one schedule over this long: each
	// tenant runs at a fixed offset within it, derived from its name, so
	// 5,000 tenants do not start at once and a tenant's backups stay a
	// day apart.
	Jitter Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// Keep is the retention: which backups survive a prune.
	Keep Keep `yaml:"keep,omitempty" json:"keep,omitzero"`
	// Offsite copies each backup to the off-site server.
	Offsite bool `yaml:"offsite,omitempty" json:"offsite,omitempty"`
	// DrillEvery is the time between two restore drills of the newest
	// backup (0: no drills).
	DrillEvery Duration `yaml:"drillEvery,omitempty" json:"drillEvery,omitempty"`
	// Quiesce, when set, holds a service's writes while the volumes are
	// backed up (databases need none: their dump is consistent).
	Quiesce *Quiesce `yaml:"quiesce,omitempty" json:"quiesce,omitempty"`
}

// Quiesce is a template's hook around the backup of a tenant's volumes:
// Pause runs in the running Service before the first volume is read, and
// Resume after the last, whatever happened (a pause left in place would
// stop the tenant). Both must return promptly: the tenant is held
// meanwhile.
type Quiesce struct {
	Service string   `yaml:"service" json:"service"`
	Pause   []string `yaml:"pause" json:"pause"`
	Resume  []string `yaml:"resume" json:"resume"`
}

// Keep says which backups a prune keeps: the Last newest, and the newest
// of each of the last Daily days, Weekly ISO weeks and Monthly months
// (in the policy's time zone), as restic's forget does. A backup kept for
// any reason is kept.
type Keep struct {
	Last    int `yaml:"last,omitempty" json:"last,omitempty"`
	Daily   int `yaml:"daily,omitempty" json:"daily,omitempty"`
	Weekly  int `yaml:"weekly,omitempty" json:"weekly,omitempty"`
	Monthly int `yaml:"monthly,omitempty" json:"monthly,omitempty"`
}

// DefaultKeep applies when a policy keeps nothing: a week of dailies, a
// month of weeklies and a year of monthlies.
var DefaultKeep = Keep{Last: 1, Daily: 7, Weekly: 4, Monthly: 12}

// Total is the most backups the retention can keep.
func (k Keep) Total() int { return k.Last + k.Daily + k.Weekly + k.Monthly }

var timeOfDay = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)

// MinBackupInterval is the shortest Every (and DrillEvery) a policy may
// set: short enough for tests, long enough that a schedule cannot flood
// the history of a tenant with operations.
const MinBackupInterval = 10 * time.Second

// WithDefaults fills what the policy leaves out.
func (b Backups) WithDefaults() Backups {
	if b.Every == 0 {
		b.Every = Duration(24 * time.Hour)
	}
	if b.TimeZone == "" {
		b.TimeZone = "UTC"
	}
	if b.Keep.Total() == 0 {
		b.Keep = DefaultKeep
	}
	return b
}

// Merge returns the policy with each field the override sets replacing
// the template's. An override's interval replaces the template's schedule
// as a whole: without its own at and jitter, it runs every interval from
// the tenant's creation (a daily time of day and a two-hour jitter would
// not go with "every 6h").
func (b Backups) Merge(o *Backups) Backups {
	if o == nil {
		return b
	}
	if o.Every != 0 {
		b.Every, b.At, b.Jitter = o.Every, "", 0
	}
	if o.At != "" {
		b.At = o.At
	}
	if o.TimeZone != "" {
		b.TimeZone = o.TimeZone
	}
	if o.Jitter != 0 {
		b.Jitter = o.Jitter
	}
	if o.Keep.Total() != 0 {
		b.Keep = o.Keep
	}
	if o.Offsite {
		b.Offsite = true
	}
	if o.DrillEvery != 0 {
		b.DrillEvery = o.DrillEvery
	}
	if o.Quiesce != nil {
		b.Quiesce = o.Quiesce
	}
	return b
}

// Validate checks the policy; errors name the field under prefix (e.g.
// "backups").
func (b Backups) Validate(prefix string) error {
	switch {
	case b.Every != 0 && b.Every.D() < MinBackupInterval:
		return fieldErr(prefix+".every", "%s is shorter than %s", b.Every.D(), MinBackupInterval)
	case b.DrillEvery < 0 || (b.DrillEvery != 0 && b.DrillEvery.D() < MinBackupInterval):
		return fieldErr(prefix+".drillEvery", "%s is shorter than %s", b.DrillEvery.D(), MinBackupInterval)
	case b.Jitter < 0:
		return fieldErr(prefix+".jitter", "must not be negative")
	case b.Keep.Last < 0 || b.Keep.Daily < 0 || b.Keep.Weekly < 0 || b.Keep.Monthly < 0:
		return fieldErr(prefix+".keep", "counts must not be negative")
	case b.At != "" && !timeOfDay.MatchString(b.At):
		return fieldErr(prefix+".at", "%q is not a time of day HH:MM", b.At)
	case b.Quiesce != nil && (b.Quiesce.Service == "" || len(b.Quiesce.Pause) == 0 || len(b.Quiesce.Resume) == 0):
		return fieldErr(prefix+".quiesce", "needs a service, a pause and a resume command")
	}
	every := b.WithDefaults().Every.D()
	if b.At != "" && every%(24*time.Hour) != 0 {
		return fieldErr(prefix+".at", "needs every to be a whole number of days, not %s", every)
	}
	if b.Jitter.D() >= every {
		return fieldErr(prefix+".jitter", "%s must be shorter than every (%s)", b.Jitter.D(), every)
	}
	if b.TimeZone != "" {
		if _, err := time.LoadLocation(b.TimeZone); err != nil {
			return fieldErr(prefix+".timezone", "%q is not a known time zone", b.TimeZone)
		}
	}
	return nil
}

// Offset is the tenant's fixed place within the jitter window.
func (b Backups) Offset(tenant string) time.Duration {
	if b.Jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(tenant))
	return time.Duration(h.Sum64() % uint64(b.Jitter))
}

// NextBackup is when the tenant's next scheduled backup is due, given its
// last one (zero: none yet) and its creation. It is a pure function of its
// arguments, so a workflow may call it. loc is the policy's zone, loaded
// by the caller (nil: UTC).
func (b Backups) NextBackup(tenant string, created, last time.Time, loc *time.Location) time.Time {
	b = b.WithDefaults()
	every, off := b.Every.D(), b.Offset(tenant)
	if loc == nil {
		loc = time.UTC
	}
	if b.At == "" {
		if !last.IsZero() {
			// The next slot after the last backup: slots stay aligned on
			// the creation time, whatever delay a busy tenant caused.
			slots := int64(last.Sub(created.Add(off))/every) + 1
			return created.Add(off).Add(every * time.Duration(slots))
		}
		return created.Add(off).Add(every)
	}
	var hh, mm int
	_, _ = fmt.Sscanf(b.At, "%d:%d", &hh, &mm)
	from := created
	if !last.IsZero() {
		from = last
	}
	local := from.In(loc)
	slot := time.Date(local.Year(), local.Month(), local.Day(), hh, mm, 0, 0, loc).Add(off)
	for !slot.After(from) {
		local = local.AddDate(0, 0, 1)
		slot = time.Date(local.Year(), local.Month(), local.Day(), hh, mm, 0, 0, loc).Add(off)
	}
	if !last.IsZero() {
		// Every n days: the slot n-1 days after the first free one.
		slot = slot.AddDate(0, 0, int(every/(24*time.Hour))-1)
	}
	return slot.UTC()
}

// NextDrill is when the next drill is due, given the last one (zero:
// none yet) and the newest backup; zero when the policy has no drills.
func (b Backups) NextDrill(tenant string, lastDrill, newestBackup time.Time) time.Time {
	if b.DrillEvery <= 0 || newestBackup.IsZero() {
		return time.Time{}
	}
	if lastDrill.IsZero() {
		return newestBackup
	}
	return lastDrill.Add(b.DrillEvery.D())
}

// backupsJSON is Backups with its durations as Go duration strings
// ("24h0m0s"), as people write and read them.
type backupsJSON struct {
	Every      string   `json:"every,omitempty"`
	At         string   `json:"at,omitempty"`
	TimeZone   string   `json:"timezone,omitempty"`
	Jitter     string   `json:"jitter,omitempty"`
	Keep       Keep     `json:"keep,omitzero"`
	Offsite    bool     `json:"offsite,omitempty"`
	DrillEvery string   `json:"drillEvery,omitempty"`
	Quiesce    *Quiesce `json:"quiesce,omitempty"`
}

func durationString(d Duration) string {
	if d == 0 {
		return ""
	}
	return d.D().String()
}

// MarshalJSON writes durations as strings.
func (b Backups) MarshalJSON() ([]byte, error) {
	return json.Marshal(backupsJSON{Every: durationString(b.Every), At: b.At, TimeZone: b.TimeZone,
		Jitter: durationString(b.Jitter), Keep: b.Keep, Offsite: b.Offsite, DrillEvery: durationString(b.DrillEvery), Quiesce: b.Quiesce})
}

// UnmarshalJSON reads durations as strings ("24h"); unknown fields are
// refused, naming the field.
func (b *Backups) UnmarshalJSON(data []byte) error {
	var v backupsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return fieldErr(typeErr.Field, "must be a %s, not %s", typeErr.Type.Kind(), typeErr.Value)
		}
		if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			if name, uerr := strconv.Unquote(rest); uerr == nil && name != "" {
				return fieldErr(name, "unknown field")
			}
		}
		return err
	}
	out := Backups{At: v.At, TimeZone: v.TimeZone, Keep: v.Keep, Offsite: v.Offsite, Quiesce: v.Quiesce}
	for _, f := range []struct {
		name string
		s    string
		d    *Duration
	}{{"every", v.Every, &out.Every}, {"jitter", v.Jitter, &out.Jitter}, {"drillEvery", v.DrillEvery, &out.DrillEvery}} {
		if f.s == "" {
			continue
		}
		d, err := time.ParseDuration(f.s)
		if err != nil {
			return fieldErr(f.name, "%q is not a duration (e.g. 24h, 30m)", f.s)
		}
		*f.d = Duration(d)
	}
	*b = out
	return nil
}

// FieldError is a bad backup policy field: Field names it with dots
// ("backups.every"), as the API reports it.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}
