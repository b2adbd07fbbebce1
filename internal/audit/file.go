package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// FileStore keeps the trail in a directory, one JSON-lines file per UTC
// day (2026-12-07.jsonl), each entry written and synced before Append
// returns. Prune deletes the days before the cutoff's. It suits one API
// process: replicas each keep their own.
type FileStore struct {
	dir  string
	mu   sync.Mutex
	day  string
	file *os.File
}

const dayFormat = "2006-01-02"

// OpenFileStore opens (making it if needed) the trail in dir.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit directory: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return nil, fmt.Errorf("audit directory %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return &FileStore{dir: dir}, nil
}

// Append stamps e with the time and an id, writes it to its day's file
// and syncs it.
func (s *FileStore) Append(_ context.Context, e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Stamped under the lock: the file's order is the ids' order, which
	// the pages' cursor relies on.
	e.At, e.ID = time.Time{}, ""
	e.Normalize(time.Now())
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	day := e.At.Format(dayFormat)
	if s.file == nil || s.day != day {
		if s.file != nil {
			s.file.Close()
		}
		if s.file, err = openDay(filepath.Join(s.dir, day+".jsonl")); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		s.day = day
		syncDir(s.dir)
	}
	if _, err := s.file.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// openDay opens a day's file for appending. A last line cut by a crash
// mid-write is ended first, so the next entry starts a line of its own.
func openDay(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte{'\n'})
			if err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	return f, nil
}

// syncDir makes a new file's name durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// days lists the trail's days, oldest first.
func (s *FileStore) days() ([]string, error) {
	names, err := filepath.Glob(filepath.Join(s.dir, "*.jsonl"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		day := strings.TrimSuffix(filepath.Base(n), ".jsonl")
		if _, err := time.Parse(dayFormat, day); err == nil {
			out = append(out, day)
		}
	}
	slices.Sort(out)
	return out, nil
}

// List scans the days q can match, oldest first.
func (s *FileStore) List(ctx context.Context, q Query) ([]Entry, bool, error) {
	if q.Limit < 1 || q.Limit > MaxLimit {
		return nil, false, fmt.Errorf("%w: limit must be 1 to %d", ErrBadQuery, MaxLimit)
	}
	days, err := s.days()
	if err != nil {
		return nil, false, err
	}
	from := ""
	if !q.Since.IsZero() {
		from = q.Since.UTC().Format(dayFormat)
	}
	if len(q.After) >= 8 {
		// An id begins with its day (20261207T…).
		if t, err := time.Parse("20060102", q.After[:8]); err == nil && t.Format(dayFormat) > from {
			from = t.Format(dayFormat)
		}
	}
	var out []Entry
	for _, day := range days {
		if day < from || (!q.Until.IsZero() && day > q.Until.UTC().Format(dayFormat)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		more, err := s.scan(day, q, &out)
		if err != nil || more {
			return out[:min(len(out), q.Limit)], more, err
		}
	}
	return out, false, nil
}

// scan appends the day's matches to out; more is true once out holds
// more than a page.
func (s *FileStore) scan(day string, q Query, out *[]Entry) (more bool, err error) {
	f, err := os.Open(filepath.Join(s.dir, day+".jsonl"))
	if os.IsNotExist(err) {
		return false, nil // pruned meanwhile
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e Entry
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue // a line cut by a crash mid-write
		}
		if q.Matches(e) {
			*out = append(*out, e)
			if len(*out) > q.Limit {
				return true, nil
			}
		}
	}
	return false, sc.Err()
}

// Prune deletes the files of the days before cutoff's, returning how
// many.
func (s *FileStore) Prune(_ context.Context, cutoff time.Time) (int64, error) {
	days, err := s.days()
	if err != nil {
		return 0, err
	}
	keep := cutoff.UTC().Format(dayFormat)
	var n int64
	for _, day := range days {
		if day >= keep {
			break
		}
		if err := os.Remove(filepath.Join(s.dir, day+".jsonl")); err != nil && !os.IsNotExist(err) {
			return n, err
		}
		n++
	}
	return n, nil
}

// Close closes the day's file.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}
