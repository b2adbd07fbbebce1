package volsync

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/internal/beat"
)

// Settings of the hosts' workers.
const (
	// EnvListen is the address a host worker serves the sync on.
	EnvListen = "TENANTFLOW_HOST_SYNC_LISTEN"
	// EnvToken is the token every host of the fleet shares.
	EnvToken = "TENANTFLOW_HOST_SYNC_TOKEN"
)

// Failure types.
const (
	// ErrUnauthorized: the hosts do not share the same token (permanent).
	ErrUnauthorized = "VolumeSyncUnauthorized"
	// ErrRefused: the receiver refused the request as such (permanent).
	ErrRefused = "VolumeSyncRefused"
	// ErrNotConfigured: this worker has no sync token.
	ErrNotConfigured = "VolumeSyncNotConfigured"
)

// hotWindow is how recent a modification must be for a live pass to mark
// its file unsettled: a write within the same tick of the file system's
// clock as the copy would not move its time.
const hotWindow = 2 * time.Second

// Activities are the sending side, run by the source host's worker.
type Activities struct {
	Volumes Volumes
	Token   string
	Client  *http.Client
	// Heartbeat records progress (activity.RecordHeartbeat); nil: none.
	Heartbeat func(ctx context.Context, details ...any)
	Log       *slog.Logger
}

// PushInput asks for the tenant's volumes to be copied to another host.
type PushInput struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner,omitempty"`
	// Volumes are the logical names (as in the template).
	Volumes []string `json:"volumes"`
	// To is the receiving host's sync URL (its registration's "sync").
	To string `json:"to"`
	// Final: the tenant's services are stopped. Nothing is marked
	// unsettled, and the receiver's copy must then equal the source's.
	Final bool `json:"final,omitempty"`
}

// Pushed is what a pass sent.
type Pushed struct {
	Applied
	// Verified: a final pass found the receiver's copy equal to the source.
	Verified bool          `json:"verified,omitempty"`
	Took     time.Duration `json:"took"`
}

// PushVolumes copies the tenant's volumes to the host at in.To: for each,
// the receiver's manifest, then only what differs. A retry sends what
// still differs. A final pass is verified.
func (a *Activities) PushVolumes(ctx context.Context, in PushInput) (Pushed, error) {
	start := time.Now()
	var out Pushed
	if a.Token == "" {
		return out, temporal.NewNonRetryableApplicationError("this host's worker has no "+EnvToken+": it cannot send a tenant's volumes to another host", ErrNotConfigured, nil)
	}
	base, err := url.Parse(in.To)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the receiving host's sync address %q is not an http(s) URL", in.To), ErrRefused, err)
	}
	var sent atomic.Int64
	stop := beat.Every(ctx, time.Second, a.Heartbeat, func() any { return map[string]int64{"bytesSent": sent.Load()} })
	defer stop()
	for _, vol := range in.Volumes {
		applied, err := a.pushVolume(ctx, in, base, vol, &sent)
		if err != nil {
			return out, fmt.Errorf("volume %s: %w", vol, err)
		}
		out.Files += applied.Files
		out.Dirs += applied.Dirs
		out.Links += applied.Links
		out.Deleted += applied.Deleted
		out.Bytes += applied.Bytes
	}
	out.Verified, out.Took = in.Final, time.Since(start)
	a.log().Info("volumes pushed", "tenant", in.Tenant, "to", in.To, "final", in.Final,
		"files", out.Files, "bytes", out.Bytes, "deleted", out.Deleted, "took", out.Took)
	return out, nil
}

func (a *Activities) pushVolume(ctx context.Context, in PushInput, base *url.URL, vol string, sent *atomic.Int64) (Applied, error) {
	dir, err := a.Volumes.VolumeDir(ctx, in.Tenant, in.Owner, vol)
	if err != nil {
		return Applied{}, err
	}
	u := base.JoinPath("volsync/v1/tenants", in.Tenant, "volumes", vol)
	u.RawQuery = url.Values{"owner": {in.Owner}}.Encode()
	have, err := a.manifest(ctx, u)
	if err != nil {
		return Applied{}, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(send(pw, dir, have, in.Final, sent)) }()
	var applied Applied
	if err := a.call(ctx, http.MethodPut, u, pr, &applied); err != nil {
		pr.CloseWithError(err)
		return applied, err
	}
	if in.Final {
		return applied, a.verify(ctx, u, dir)
	}
	return applied, nil
}

// verify compares the receiver's copy with the source, entry by entry.
func (a *Activities) verify(ctx context.Context, u *url.URL, dir string) error {
	want, err := Manifest(dir)
	if err != nil {
		return err
	}
	have, err := a.manifest(ctx, u)
	if err != nil {
		return err
	}
	differ, extra := Diff(want, have)
	if len(differ)+len(extra) > 0 {
		slices.Sort(differ)
		slices.Sort(extra)
		return fmt.Errorf("the copy differs from the source after the final pass: %d entries differ (%v), %d extra (%v)",
			len(differ), first(differ), len(extra), first(extra))
	}
	return nil
}

func first(s []string) []string { return s[:min(len(s), 3)] }

func (a *Activities) manifest(ctx context.Context, u *url.URL) (map[string]Entry, error) {
	m := *u
	m.Path += "/manifest"
	var have map[string]Entry
	err := a.call(ctx, http.MethodGet, &m, nil, func(r io.Reader) error {
		var err error
		have, err = readManifest(r)
		return err
	})
	return have, err
}

// call sends a request to the receiver; into is a pointer the JSON answer
// decodes into, or a func reading the body.
func (a *Activities) call(ctx context.Context, method string, u *url.URL, body io.Reader, into any) error {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/x-tar")
	}
	c := a.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var f failure
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&f)
		msg := fmt.Sprintf("%s %s: %s: %s", method, u.Path, resp.Status, f.Error)
		if f.Type != "" && resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return temporal.NewNonRetryableApplicationError(msg, f.Type, nil)
		}
		return errors.New(msg)
	}
	if read, ok := into.(func(io.Reader) error); ok {
		return read(resp.Body)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

func (a *Activities) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// send streams, as a tar archive, the entries of dir that differ from
// have, then the deletions of what dir no longer holds.
func send(w io.Writer, dir string, have map[string]Entry, final bool, sent *atomic.Int64) error {
	tw := tar.NewWriter(w)
	seen := make(map[string]bool, len(have))
	err := walk(dir, func(e Entry, fi fs.FileInfo) error {
		seen[e.Path] = true
		if h, ok := have[e.Path]; ok && e.Same(h) {
			return nil
		}
		hdr := header(e, fi)
		if e.Type == TypeFile && !final && time.Since(fi.ModTime()) < hotWindow {
			hdr.PAXRecords = map[string]string{paxUnsettled: "1"}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if e.Type != TypeFile {
			return nil
		}
		n, err := copyFile(tw, dir+"/"+e.Path, e.Size)
		sent.Add(n)
		return err
	})
	if err != nil {
		return err
	}
	var extra []string
	for p := range have {
		if !seen[p] {
			extra = append(extra, p)
		}
	}
	slices.Sort(extra)
	for _, p := range extra {
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Format: tar.FormatPAX,
			PAXRecords: map[string]string{paxDelete: "1"}}); err != nil {
			return err
		}
	}
	return tw.Close()
}

func header(e Entry, fi fs.FileInfo) *tar.Header {
	h := &tar.Header{Name: e.Path, Uid: e.UID, Gid: e.GID, Mode: tarMode(fs.FileMode(e.Mode)), ModTime: fi.ModTime(), Format: tar.FormatPAX}
	switch e.Type {
	case TypeDir:
		h.Typeflag = tar.TypeDir
	case TypeLink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
	default:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	}
	return h
}

func tarMode(m fs.FileMode) int64 {
	out := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

// copyFile writes exactly size bytes of the file: a file that shrank
// while a live pass read it is padded (its time moved, so the next pass
// sends it again); one that grew is cut the same way.
func copyFile(w io.Writer, path string, size int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return zeros(w, size)
		}
		return 0, err
	}
	defer f.Close()
	n, err := io.CopyN(w, f, size)
	if errors.Is(err, io.EOF) {
		m, err := zeros(w, size-n)
		return n + m, err
	}
	return n, err
}

func zeros(w io.Writer, n int64) (int64, error) {
	return io.CopyN(w, zeroReader{}, n)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
