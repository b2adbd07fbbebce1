package backup

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"
)

// fileWriters is how many goroutines create and write restored files:
// creating files and filling fresh page-cache pages is the most expensive
// part of a restore, and two writers keep both cores busy when one waits.
const fileWriters = 2

// extraction restores one volume's archive into an empty directory and
// checks the result against the manifest's entries. Only entries the
// manifest lists are created, each only inside a directory this extraction
// made itself (so never through a symlink), and every access goes through
// os.Root: a hostile archive cannot write outside the directory.
type extraction struct {
	a       *Activities
	vol     string
	root    *os.Root
	entries []Entry
	want    map[string]*Entry
	asRoot  bool // owners are restored and compared only as root
	discard bool // remove each file once checked (verification)
	diffs   *diffs

	// Owned by the parsing goroutine until the pipeline ends.
	seen     map[string]bool
	restored map[string]bool // extracted, to be compared
	made     map[string]bool // directories created: the only valid parents
	dirs     []meta          // metadata applied once their content is done

	// Owned by the hashing goroutine until the pipeline ends.
	checked map[string]bool // files read back and compared
	files   int
	bytes   int64
}

// meta is an entry's metadata from its archive header.
type meta struct {
	path     string
	mode     uint32
	uid, gid int
	mtime    time.Time
}

// fileJob is a restored file, its metadata from the archive (applied once
// it has been read back) and what the manifest says it must be.
type fileJob struct {
	meta
	want *Entry
}

// piece is a step of writing the restored files, from the parsing to a
// writing goroutine: create a file, write n bytes of a pooled buffer to
// it, or close it and hand it to the hashing goroutine.
type piece struct {
	create *fileJob
	buf    *[]byte
	n      int
	close  bool
}

// restoreInto extracts archive (va's archive, read from its start) into the
// empty directory dst and compares the result with the manifest. A
// difference is a non-retryable ErrVerificationFailed naming the volume
// and the first paths. One goroutine reads, hashes and parses the
// archive, two create and write the files, one reads back and hashes each
// file as soon as it is closed and compares its metadata.
//
// With discard (a verification) each file is removed once checked: the
// scratch volume never needs the volume's full size, and the page cache the
// next file is written to is the one just freed.
func (a *Activities) restoreInto(ctx context.Context, archive io.Reader, va VolumeArchive, dst string, p *progress, discard bool) (files int, bytes int64, err error) {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return 0, 0, fmt.Errorf("volume %s: %w", va.Volume, err)
	}
	defer root.Close()
	x := &extraction{
		a: a, vol: va.Volume, root: root, entries: va.Entries, want: make(map[string]*Entry, len(va.Entries)),
		asRoot: os.Geteuid() == 0, discard: discard, diffs: &diffs{},
		seen: make(map[string]bool, len(va.Entries)), restored: make(map[string]bool, len(va.Entries)),
		made: map[string]bool{".": true}, checked: make(map[string]bool, len(va.Entries)),
	}
	for i := range va.Entries {
		x.want[va.Entries[i].Path] = &va.Entries[i]
	}
	p.stage("volume "+va.Volume, va.DataBytes)

	hr := &hashReader{r: archive, h: sha256.New()}
	br := bufio.NewReaderSize(hr, 64<<10)

	g, gctx := errgroup.WithContext(ctx)
	writers := make([]chan piece, fileWriters)
	jobs := make(chan fileJob, 64)
	var writing sync.WaitGroup
	for i := range writers {
		writers[i] = make(chan piece, pipelineDepth)
		writing.Add(1)
		g.Go(func() error {
			defer writing.Done()
			return x.writeFiles(gctx, writers[i], jobs, p)
		})
	}
	g.Go(func() error {
		defer func() {
			for _, w := range writers {
				close(w)
			}
		}()
		return x.extract(gctx, tar.NewReader(br), hr, writers)
	})
	g.Go(func() error {
		writing.Wait()
		close(jobs)
		return nil
	})
	g.Go(func() error { return x.rehash(gctx, jobs) })
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}

	// The rest of the archive (end blocks) belongs to its checksum.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return 0, 0, fmt.Errorf("volume %s: read archive: %w", va.Volume, err)
	}
	if sum := hexSum(hr.h); hr.n != va.ArchiveBytes || sum != va.ArchiveSHA256 {
		x.diffs.add(va.Archive, "archive is %d bytes with sha256 %s, the manifest says %d bytes with %s", hr.n, sum, va.ArchiveBytes, va.ArchiveSHA256)
	}
	for _, e := range va.Entries {
		if !x.seen[e.Path] {
			x.diffs.add(e.Path, "missing from the archive")
		}
	}
	if err := x.finishDirs(); err != nil {
		return 0, 0, err
	}
	if err := x.compare(); err != nil {
		return 0, 0, err
	}
	if err := x.diffs.err(va.Volume); err != nil {
		return 0, 0, err
	}
	return x.files, x.bytes, nil
}

// refuse fails the extraction for good: the archive tries to leave the
// directory it is restored into.
func (x *extraction) refuse(name, why string) error {
	msg := fmt.Sprintf("volume %s: archive entry %q %s: refused", x.vol, name, why)
	return temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
}

// entryPath is the volume-relative path of an archive name.
func (x *extraction) entryPath(name string) (string, error) {
	if name == "" {
		return "", x.refuse(name, "has no name")
	}
	if strings.HasPrefix(name, "/") {
		return "", x.refuse(name, "is an absolute path")
	}
	for part := range strings.SplitSeq(name, "/") {
		if part == ".." {
			return "", x.refuse(name, "escapes the volume")
		}
	}
	return path.Clean(name), nil
}

// extract parses the archive: it makes directories and symlinks itself and
// sends each file, in turn, to one of the writers.
func (x *extraction) extract(ctx context.Context, tr *tar.Reader, hr *hashReader, writers []chan piece) error {
	var pieces chan piece
	send := func(pc piece) error {
		select {
		case pieces <- pc:
			return nil
		case <-ctx.Done():
			if pc.buf != nil {
				x.a.putBuf(pc.buf)
			}
			return ctx.Err()
		}
	}
	for nfile := 0; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return x.readErr(hr, err)
		}
		name, err := x.entryPath(hdr.Name)
		if err != nil {
			return err
		}
		want := x.want[name]
		switch {
		case want == nil:
			x.diffs.add(name, "is in the archive but not in the manifest")
			continue
		case x.seen[name]:
			x.diffs.add(name, "is in the archive twice")
			continue
		}
		x.seen[name] = true
		typ := typeOf(hdr.Typeflag)
		if typ != want.Type {
			x.diffs.add(name, "is a %s in the archive, a %s in the manifest", typ, want.Type)
			continue
		}
		if err := x.checkHeader(name, hdr, typ, want); err != nil {
			return err
		}
		if name != "." && !x.made[path.Dir(name)] {
			x.diffs.add(name, "its parent is not a directory of the archive")
			continue
		}
		m := meta{path: name, mode: uint32(hdr.Mode) & 0o7777, uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime}
		switch typ {
		case TypeDir:
			if name != "." {
				if err := x.root.Mkdir(name, 0o700); err != nil {
					return fmt.Errorf("volume %s: %w", x.vol, err)
				}
				x.made[name] = true
			}
			x.dirs = append(x.dirs, m)
		case TypeSymlink:
			if err := x.root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("volume %s: %w", x.vol, err)
			}
			if x.asRoot {
				if err := x.root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
					return fmt.Errorf("volume %s: %w", x.vol, err)
				}
			}
		case TypeFile:
			pieces = writers[nfile%len(writers)]
			nfile++
			if err := x.sendFile(tr, hr, fileJob{meta: m, want: want}, want.Size, send); err != nil {
				return err
			}
		default:
			x.diffs.add(name, "has tar type %q, which a backup never holds", hdr.Typeflag)
			continue
		}
		x.restored[name] = true
	}
}

// checkHeader refuses an entry whose header claims other data than the
// manifest says: the data is written before the archive's checksum can be
// compared at its end, so a small tampered archive claiming a huge or
// sparse file (which the tar reader expands) would fill the disk first.
func (x *extraction) checkHeader(name string, hdr *tar.Header, typ string, want *Entry) error {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return x.refuse(name, "is a sparse file, which a backup never holds")
		}
	}
	switch {
	case typ == TypeFile && hdr.Size != want.Size:
		return x.refuse(name, fmt.Sprintf("claims %d bytes, the manifest %d", hdr.Size, want.Size))
	case typ != TypeFile && hdr.Size != 0:
		return x.refuse(name, fmt.Sprintf("is a %s with %d bytes of data", typ, hdr.Size))
	}
	return nil
}

// readErr classifies an error of the tar reader: the backup location's own
// I/O error is retryable, a malformed archive is not.
func (x *extraction) readErr(hr *hashReader, err error) error {
	if hr.err != nil {
		return fmt.Errorf("volume %s: read archive: %w", x.vol, hr.err)
	}
	msg := fmt.Sprintf("volume %s: archive is corrupt: %v", x.vol, err)
	return temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, err)
}

func typeOf(flag byte) string {
	switch flag {
	case tar.TypeDir:
		return TypeDir
	case tar.TypeSymlink:
		return TypeSymlink
	case tar.TypeReg:
		return TypeFile
	default:
		return fmt.Sprintf("tar type %q", flag)
	}
}

// sendFile sends the pieces that restore one file of the archive.
func (x *extraction) sendFile(tr *tar.Reader, hr *hashReader, job fileJob, size int64, send func(piece) error) error {
	if err := send(piece{create: &job}); err != nil {
		return err
	}
	for remaining := size; remaining > 0; {
		bp := x.a.buf()
		n, err := io.ReadFull(tr, (*bp)[:min(int64(len(*bp)), remaining)])
		if err != nil {
			x.a.putBuf(bp)
			return x.readErr(hr, err)
		}
		remaining -= int64(n)
		if err := send(piece{buf: bp, n: n}); err != nil {
			return err
		}
	}
	return send(piece{close: true})
}

// writeFiles creates the files it is sent (each must not exist yet) and
// writes them.
func (x *extraction) writeFiles(ctx context.Context, pieces <-chan piece, jobs chan<- fileJob, p *progress) error {
	var (
		f   *os.File
		cur *fileJob
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		var pc piece
		var ok bool
		select {
		case <-ctx.Done():
			return ctx.Err()
		case pc, ok = <-pieces:
		}
		if !ok {
			return nil
		}
		switch {
		case pc.create != nil:
			var err error
			if f, err = x.root.OpenFile(pc.create.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
				return fmt.Errorf("volume %s: %w", x.vol, err)
			}
			cur = pc.create
		case pc.buf != nil:
			_, err := f.Write((*pc.buf)[:pc.n])
			x.a.putBuf(pc.buf)
			if err != nil {
				return fmt.Errorf("volume %s: %w", x.vol, err)
			}
			p.add(pc.n)
		case pc.close:
			err := f.Close()
			f = nil
			if err != nil {
				return fmt.Errorf("volume %s: %w", x.vol, err)
			}
			select {
			case jobs <- *cur:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
