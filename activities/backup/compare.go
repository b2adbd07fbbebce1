package backup

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.temporal.io/sdk/temporal"
)

// rehash reads back each restored file, applies its owner, mode and time
// (the mode after the owner: chown clears setuid) and compares content and
// metadata with the manifest.
func (x *extraction) rehash(ctx context.Context, jobs <-chan fileJob) error {
	bp := x.a.buf()
	defer x.a.putBuf(bp)
	for j := range jobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := x.check(j, *bp); err != nil {
			return err
		}
	}
	return nil
}

func (x *extraction) check(j fileJob, buf []byte) error {
	f, err := x.root.Open(j.path)
	if err != nil {
		return fmt.Errorf("volume %s: %w", x.vol, err)
	}
	defer f.Close()
	h := sha256.New()
	var n int64
	for {
		m, err := f.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("volume %s: read back %s: %w", x.vol, j.path, err)
		}
	}
	if x.asRoot {
		if err := f.Chown(j.uid, j.gid); err != nil {
			return fmt.Errorf("volume %s: %w", x.vol, err)
		}
	}
	if err := f.Chmod(fileMode(j.mode)); err != nil {
		return fmt.Errorf("volume %s: %w", x.vol, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("volume %s: %w", x.vol, err)
	}
	if err := x.root.Chtimes(j.path, time.Time{}, j.mtime); err != nil {
		return fmt.Errorf("volume %s: %w", x.vol, err)
	}
	x.files++
	x.bytes += n
	if sum := hexSum(h); n != j.want.Size || sum != j.want.SHA256 {
		x.diffs.add(j.path, "content differs: %d bytes with sha256 %s restored, %d bytes with %s backed up", n, sum, j.want.Size, j.want.SHA256)
	}
	fi, err := x.root.Lstat(j.path)
	if err != nil {
		return fmt.Errorf("volume %s: %w", x.vol, err)
	}
	got, err := entryOf(x.root, x.vol, j.path, fi)
	if err != nil {
		return x.strange(err)
	}
	x.compareEntry(got, j.want)
	x.checked[j.path] = true
	if x.discard {
		if err := x.root.Remove(j.path); err != nil {
			return fmt.Errorf("volume %s: %w", x.vol, err)
		}
	}
	return nil
}

// strange turns the failure to describe something this restore did not
// make (a FIFO appeared) into a verification failure.
func (x *extraction) strange(err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		msg := fmt.Sprintf("volume %s: restored tree: %s", x.vol, appErr.Message())
		return temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, err)
	}
	return err
}

// finishDirs applies the directories' metadata deepest first, after all
// their content exists: a read-only directory is filled before it becomes
// read-only, and creating its content no longer moves its time.
func (x *extraction) finishDirs() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if x.asRoot {
			if err := x.root.Lchown(d.path, d.uid, d.gid); err != nil {
				return fmt.Errorf("volume %s: %w", x.vol, err)
			}
		}
		if err := x.root.Chmod(d.path, fileMode(d.mode)); err != nil {
			return fmt.Errorf("volume %s: %w", x.vol, err)
		}
		if err := x.root.Chtimes(d.path, time.Time{}, d.mtime); err != nil {
			return fmt.Errorf("volume %s: %w", x.vol, err)
		}
	}
	return nil
}

// compare lists the restored tree and compares the directories and
// symlinks with the manifest (files were compared as they were read back),
// and finds what is missing or should not be there.
func (x *extraction) compare() error {
	got, _, _, err := scan(x.root, x.vol)
	if err != nil {
		return x.strange(err)
	}
	found := make(map[string]bool, len(got))
	for _, g := range got {
		found[g.Path] = true
		w := x.want[g.Path]
		switch {
		case w == nil:
			x.diffs.add(g.Path, "restored but not in the backup")
		case !x.restored[g.Path] || x.checked[g.Path]:
			// Skipped (and reported) while extracting, or compared already.
		default:
			x.compareEntry(g, w)
		}
	}
	for _, w := range x.entries {
		if x.restored[w.Path] && !found[w.Path] && !(x.discard && x.checked[w.Path]) {
			x.diffs.add(w.Path, "not restored")
		}
	}
	return nil
}

// compareEntry reports the first difference between a restored entry and
// the manifest's.
func (x *extraction) compareEntry(g Entry, w *Entry) {
	switch {
	case g.Type != w.Type:
		x.diffs.add(g.Path, "restored as a %s, backed up as a %s", g.Type, w.Type)
	case g.Type != TypeSymlink && g.Mode != w.Mode:
		x.diffs.add(g.Path, "mode %04o restored, %04o backed up", g.Mode, w.Mode)
	case x.asRoot && (g.UID != w.UID || g.GID != w.GID):
		x.diffs.add(g.Path, "owner %d:%d restored, %d:%d backed up", g.UID, g.GID, w.UID, w.GID)
	case g.Type == TypeFile && g.Size != w.Size:
		x.diffs.add(g.Path, "size %d restored, %d backed up", g.Size, w.Size)
	case g.Type == TypeSymlink && g.Target != w.Target:
		x.diffs.add(g.Path, "link to %q restored, %q backed up", g.Target, w.Target)
	case g.Type != TypeSymlink && g.ModTime.Unix() != w.ModTime.Unix():
		// Whole seconds: every filesystem keeps those.
		x.diffs.add(g.Path, "modified %s restored, %s backed up", g.ModTime.Format(time.RFC3339Nano), w.ModTime.Format(time.RFC3339Nano))
	}
}

// matches reports whether the directory dir already holds the volume va
// describes: the same entries, compared as a restore compares them
// (compareEntry), and every file's content. A restore leaves such a volume
// as it is: it holds the data, and emptying it first would only put the
// data at risk. It stops at the first difference.
func (a *Activities) matches(ctx context.Context, dir string, va VolumeArchive, p *progress) (files int, bytes int64, same bool, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, 0, false, fmt.Errorf("volume %s: %w", va.Volume, err)
	}
	defer root.Close()
	got, _, total, err := scan(root, va.Volume)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return 0, 0, false, nil // a FIFO, say: not the backup's, the refill replaces it
	}
	if err != nil {
		return 0, 0, false, err
	}
	if len(got) != len(va.Entries) {
		return 0, 0, false, nil
	}
	x := &extraction{vol: va.Volume, asRoot: os.Geteuid() == 0, diffs: &diffs{}}
	for i := range got {
		if got[i].Path != va.Entries[i].Path {
			return 0, 0, false, nil
		}
		x.compareEntry(got[i], &va.Entries[i])
	}
	if x.diffs.err(va.Volume) != nil {
		return 0, 0, false, nil
	}
	p.stage("compare volume "+va.Volume, total)
	for _, e := range va.Entries {
		if e.Type != TypeFile {
			continue
		}
		ok, err := a.sameContent(ctx, root, va.Volume, e, p)
		if err != nil || !ok {
			return 0, 0, false, err
		}
		files++
		bytes += e.Size
	}
	return files, bytes, true, nil
}

// sameContent reports whether the volume's file e.Path has e's SHA-256.
func (a *Activities) sameContent(ctx context.Context, root *os.Root, vol string, e Entry, p *progress) (bool, error) {
	f, err := root.Open(e.Path)
	if err != nil {
		return false, fmt.Errorf("volume %s: %w", vol, err)
	}
	defer f.Close()
	err = a.checkContent(ctx, f, e.Size, e.SHA256, "volume "+vol+": "+e.Path, p)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return false, nil
	}
	return err == nil, err
}
