// Package volsync copies a tenant's volumes directly from one Docker host
// to another, the way rsync does it between two machines: the receiving
// host's worker serves a manifest of what its copy holds (path, type,
// size, modification time, mode, owner), the sending host's worker walks
// its own copy and streams, as a tar archive, only the entries that
// differ plus the deletions, and the receiver applies them in place.
//
// A move runs it twice: a live pre-copy while the tenant serves (files
// modified in the last seconds are marked unsettled, so the next pass
// sends them again whatever their time says), then, with the tenant's
// services stopped, a final pass that sends only what changed since and
// is verified: the receiver's manifest must then equal the sender's,
// entry by entry. No backup repository, no key derivation and no full
// restore sit in the tenant's interruption.
//
// The receiver is an HTTP handler each host worker serves
// (TENANTFLOW_HOST_SYNC_LISTEN), authenticated with a token every host
// of the fleet shares; the sender is the PushVolumes activity, run on
// the source host's queue.
package volsync

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Entry is one file, directory or symbolic link of a volume.
type Entry struct {
	// Path is relative to the volume's root, with "/" separators.
	Path string `json:"p"`
	// Type is 'f' (regular file), 'd' (directory) or 'l' (symbolic link).
	Type  string `json:"t"`
	Mode  uint32 `json:"m"` // permission and setuid/setgid/sticky bits, as fs.FileMode
	UID   int    `json:"u"`
	GID   int    `json:"g"`
	Size  int64  `json:"s,omitempty"`
	MTime int64  `json:"mt,omitempty"` // nanoseconds since the epoch (files)
	Link  string `json:"l,omitempty"`
}

// Entry types.
const (
	TypeFile = "f"
	TypeDir  = "d"
	TypeLink = "l"
)

// tmpPrefix names the receiver's files being written; a pass interrupted
// leaves some, which the next pass's manifest lists and the sender
// deletes.
const tmpPrefix = ".volsync-tmp-"

// modeBits keeps what a copy preserves of a mode.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// entryOf describes fi at rel; ok is false for what a volume copy skips
// (sockets, devices, named pipes: recreated by their programs).
func entryOf(rel string, fi fs.FileInfo) (Entry, bool) {
	e := Entry{Path: rel, Mode: uint32(fi.Mode() & modeBits)}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.UID, e.GID = int(st.Uid), int(st.Gid)
	}
	switch {
	case fi.Mode().IsRegular():
		e.Type, e.Size, e.MTime = TypeFile, fi.Size(), fi.ModTime().UnixNano()
	case fi.IsDir():
		e.Type = TypeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Type = TypeLink
	default:
		return e, false
	}
	return e, true
}

// Same reports whether two entries describe the same content and
// metadata (a directory's time is not compared: every change inside it
// moves it).
func (e Entry) Same(o Entry) bool {
	if e.Type != o.Type || e.Mode != o.Mode || e.UID != o.UID || e.GID != o.GID {
		return false
	}
	switch e.Type {
	case TypeFile:
		return e.Size == o.Size && e.MTime == o.MTime
	case TypeLink:
		return e.Link == o.Link
	}
	return true
}

// walk calls fn for every entry under root, parents before their
// contents, in lexical order; the root itself is the entry ".".
func walk(root string, fn func(Entry, fs.FileInfo) error) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking a live volume: the next pass sees it
		}
		if err != nil {
			return err
		}
		e, ok := entryOf(filepath.ToSlash(rel), fi)
		if !ok {
			return nil
		}
		if e.Type == TypeLink {
			if e.Link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		return fn(e, fi)
	})
}

// Manifest lists the volume directory root.
func Manifest(root string) ([]Entry, error) {
	var out []Entry
	err := walk(root, func(e Entry, _ fs.FileInfo) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// writeManifest streams the manifest of root as JSON lines.
func writeManifest(w io.Writer, root string) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	if err := walk(root, func(e Entry, _ fs.FileInfo) error { return enc.Encode(e) }); err != nil {
		return err
	}
	return bw.Flush()
}

// readManifest reads a manifest written by writeManifest, checking every
// path (a receiver never names a file outside its volume).
func readManifest(r io.Reader) (map[string]Entry, error) {
	out := map[string]Entry{}
	dec := json.NewDecoder(bufio.NewReader(r))
	for {
		var e Entry
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		if err := checkPath(e.Path); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		out[e.Path] = e
	}
}

// checkPath refuses a path that is not a clean relative path inside a
// volume.
func checkPath(p string) error {
	if p == "." {
		return nil
	}
	if p == "" || strings.HasPrefix(p, "/") || filepath.ToSlash(filepath.Clean(p)) != p || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("path %q is not inside the volume", p)
	}
	return nil
}

// Diff lists how want (the sender's entries) differs from have (the
// receiver's): the paths that differ or are missing, and those to delete.
func Diff(want []Entry, have map[string]Entry) (differ []string, extra []string) {
	seen := make(map[string]bool, len(want))
	for _, e := range want {
		seen[e.Path] = true
		if h, ok := have[e.Path]; !ok || !e.Same(h) {
			differ = append(differ, e.Path)
		}
	}
	for p := range have {
		if !seen[p] {
			extra = append(extra, p)
		}
	}
	return differ, extra
}
