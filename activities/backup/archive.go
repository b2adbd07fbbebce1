package backup

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"syscall"
	"unicode/utf8"

	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"
)

// pipelineDepth is how many 1 MB chunks may wait between the reading and
// the writing goroutine: enough to absorb a slow write or fsync of a page.
const pipelineDepth = 8

// writebackEvery starts the disk write of the archive every so many bytes
// so that the final fsync has little left to wait for.
const writebackEvery = 8 << 20

// scan lists a volume's entries in archive order, each directory before its
// content and names sorted, with their Lstat. Files get their size and
// checksum when they are read. Nothing is followed: a symlink is an entry,
// and os.Root keeps every access inside the volume.
func scan(root *os.Root, vol string) ([]Entry, []fs.FileInfo, int64, error) {
	var (
		entries []Entry
		infos   []fs.FileInfo
		total   int64
	)
	var walk func(p string) error
	walk = func(p string) error {
		fi, err := root.Lstat(p)
		if err != nil {
			return fmt.Errorf("volume %s: %w", vol, err)
		}
		e, err := entryOf(root, vol, p, fi)
		if err != nil {
			return err
		}
		entries, infos = append(entries, e), append(infos, fi)
		total += e.Size
		if e.Type != TypeDir {
			return nil
		}
		d, err := root.Open(p)
		if err != nil {
			return fmt.Errorf("volume %s: %w", vol, err)
		}
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			return fmt.Errorf("volume %s: read directory %s: %w", vol, p, err)
		}
		slices.Sort(names)
		for _, name := range names {
			if !utf8.ValidString(name) {
				// The manifest is JSON: it could not name the file.
				msg := fmt.Sprintf("volume %s: the name of %q in %s is not valid UTF-8: rename it to back the volume up", vol, name, p)
				return temporal.NewNonRetryableApplicationError(msg, ErrUnsupportedFileType, nil)
			}
			if err := walk(path.Join(p, name)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk("."); err != nil {
		return nil, nil, 0, err
	}
	return entries, infos, total, nil
}

// entryOf describes one Lstat result; anything but a regular file, a
// directory or a symlink is refused for good: retrying will not help.
func entryOf(root *os.Root, vol, p string, fi fs.FileInfo) (Entry, error) {
	uid, gid := owner(fi)
	e := Entry{Path: p, Mode: modeBits(fi.Mode()), UID: uid, GID: gid, ModTime: fi.ModTime().UTC()}
	switch t := fi.Mode().Type(); t {
	case 0:
		e.Type, e.Size = TypeFile, fi.Size()
	case fs.ModeDir:
		e.Type = TypeDir
	case fs.ModeSymlink:
		target, err := root.Readlink(p)
		if err != nil {
			return Entry{}, fmt.Errorf("volume %s: %w", vol, err)
		}
		e.Type, e.Target = TypeSymlink, target
	default:
		msg := fmt.Sprintf("volume %s: %s is a %s: only regular files, directories and symlinks can be backed up", vol, p, kindName(t))
		return Entry{}, temporal.NewNonRetryableApplicationError(msg, ErrUnsupportedFileType, nil)
	}
	return e, nil
}

func kindName(t fs.FileMode) string {
	switch {
	case t&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	default:
		return "special file (" + t.String() + ")"
	}
}

// modeBits is the chmod form of a Go file mode.
func modeBits(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// fileMode is the Go file mode of chmod bits.
func fileMode(bits uint32) fs.FileMode {
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// header is the tar header of an entry. PAX keeps sub-second times, long
// names and large ids; names are relative ("./" for the root), so GNU tar
// extracts an archive where it is told to.
func header(e Entry) *tar.Header {
	h := &tar.Header{Name: e.Path, Mode: int64(e.Mode), Uid: e.UID, Gid: e.GID, ModTime: e.ModTime, Format: tar.FormatPAX}
	switch e.Type {
	case TypeDir:
		h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
	case TypeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Target
	default:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	}
	return h
}

// chunk travels from the reading to the writing goroutine: a header, or
// n bytes of the current file's data in a pooled buffer.
type chunk struct {
	hdr *tar.Header
	buf *[]byte
	n   int
}

// writeArchive writes the tar of the volume at src to the file partial and
// fsyncs it. One goroutine reads and hashes the files (each read once), the
// other writes the tar and hashes the archive, so the two SHA-256 passes
// run on two cores.
func (a *Activities) writeArchive(ctx context.Context, src, partial, vol string, p *progress) (VolumeArchive, error) {
	root, err := os.OpenRoot(src)
	if err != nil {
		return VolumeArchive{}, fmt.Errorf("volume %s: %w", vol, err)
	}
	defer root.Close()
	entries, infos, total, err := scan(root, vol)
	if err != nil {
		return VolumeArchive{}, err
	}
	p.stage("volume "+vol, total)

	f, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return VolumeArchive{}, fmt.Errorf("create archive: %w", err)
	}
	defer f.Close()
	aw, err := newArchiveWriter(f)
	if err != nil {
		return VolumeArchive{}, err
	}

	g, gctx := errgroup.WithContext(ctx)
	ch := make(chan chunk, pipelineDepth)
	g.Go(func() error {
		defer close(ch)
		return a.readEntries(gctx, root, vol, entries, infos, ch)
	})
	g.Go(func() error { return a.writeTar(gctx, aw, ch, p) })
	if err := g.Wait(); err != nil {
		return VolumeArchive{}, err
	}
	if err := f.Sync(); err != nil {
		return VolumeArchive{}, fmt.Errorf("fsync %s: %w", partial, err)
	}
	if err := f.Close(); err != nil {
		return VolumeArchive{}, fmt.Errorf("close %s: %w", partial, err)
	}

	va := VolumeArchive{Volume: vol, Archive: vol + ".tar", ArchiveBytes: aw.n, ArchiveSHA256: hexSum(aw.h), Entries: entries}
	for _, e := range entries {
		if e.Type == TypeFile {
			va.Files++
			va.DataBytes += e.Size
		}
	}
	return va, nil
}

// readEntries sends each entry's header and each file's data, in order,
// and completes the file entries with what was actually read.
func (a *Activities) readEntries(ctx context.Context, root *os.Root, vol string, entries []Entry, infos []fs.FileInfo, ch chan<- chunk) error {
	send := func(c chunk) error {
		select {
		case ch <- c:
			return nil
		case <-ctx.Done():
			if c.buf != nil {
				a.putBuf(c.buf)
			}
			return ctx.Err()
		}
	}
	for i := range entries {
		if entries[i].Type != TypeFile {
			if err := send(chunk{hdr: header(entries[i])}); err != nil {
				return err
			}
			continue
		}
		if err := a.readFile(root, vol, &entries[i], infos[i], send); err != nil {
			return err
		}
	}
	return nil
}

// readFile sends one file. Its header comes from the open file's Fstat, and
// a file that is not the one scanned, or whose size changes while it is
// read, fails the attempt (retryable: a quiet volume will pass).
func (a *Activities) readFile(root *os.Root, vol string, e *Entry, scanned fs.FileInfo, send func(chunk) error) error {
	// O_NONBLOCK: a file swapped for a FIFO since the scan must not block
	// the open; Fstat then refuses it.
	f, err := root.OpenFile(e.Path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("volume %s: %w", vol, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("volume %s: %w", vol, err)
	}
	if !fi.Mode().IsRegular() || !os.SameFile(fi, scanned) {
		return fmt.Errorf("volume %s: %s was replaced while being backed up", vol, e.Path)
	}
	uid, gid := owner(fi)
	*e = Entry{Path: e.Path, Type: TypeFile, Mode: modeBits(fi.Mode()), UID: uid, GID: gid, Size: fi.Size(), ModTime: fi.ModTime().UTC()}
	if err := send(chunk{hdr: header(*e)}); err != nil {
		return err
	}
	h := sha256.New()
	for remaining := e.Size; remaining > 0; {
		bp := a.buf()
		n, err := io.ReadFull(f, (*bp)[:min(int64(len(*bp)), remaining)])
		if n > 0 {
			h.Write((*bp)[:n])
			remaining -= int64(n)
			if err := send(chunk{buf: bp, n: n}); err != nil {
				return err
			}
		} else {
			a.putBuf(bp)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("volume %s: %s shrank while being backed up (%d bytes missing)", vol, e.Path, remaining)
		}
		if err != nil {
			return fmt.Errorf("volume %s: read %s: %w", vol, e.Path, err)
		}
	}
	var probe [1]byte
	if n, _ := f.Read(probe[:]); n > 0 {
		return fmt.Errorf("volume %s: %s grew while being backed up", vol, e.Path)
	}
	e.SHA256 = hexSum(h)
	return nil
}

// writeTar writes what readEntries sends as a tar stream.
func (a *Activities) writeTar(ctx context.Context, aw *archiveWriter, ch <-chan chunk, p *progress) error {
	// Headers are small writes: batch them; data chunks pass straight
	// through an empty bufio.Writer.
	bw := bufio.NewWriterSize(aw, 64<<10)
	tw := tar.NewWriter(bw)
	for {
		var c chunk
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c, ok = <-ch:
		}
		if !ok {
			break
		}
		if c.hdr != nil {
			if err := tw.WriteHeader(c.hdr); err != nil {
				return fmt.Errorf("write archive: %w", err)
			}
			continue
		}
		_, err := tw.Write((*c.buf)[:c.n])
		a.putBuf(c.buf)
		if err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
		p.add(c.n)
	}
	if ctx.Err() != nil {
		return ctx.Err() // the reader failed: do not finish a short archive
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

// archiveWriter hashes and counts the archive as it is written and starts
// its writeback as it grows.
type archiveWriter struct {
	f       *os.File
	rc      syscall.RawConn
	h       hash.Hash
	n       int64
	started int64
}

func newArchiveWriter(f *os.File) (*archiveWriter, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", f.Name(), err)
	}
	return &archiveWriter{f: f, rc: rc, h: sha256.New()}, nil
}

func (w *archiveWriter) Write(p []byte) (int, error) {
	w.h.Write(p)
	n, err := w.f.Write(p)
	w.n += int64(n)
	if w.n-w.started >= writebackEvery {
		off, size := w.started, w.n-w.started
		_ = w.rc.Control(func(fd uintptr) { startWriteback(fd, off, size) })
		w.started = w.n
	}
	return n, err
}
