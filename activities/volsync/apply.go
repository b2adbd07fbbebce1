package volsync

import (
	"archive/tar"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"
)

// PAX records of the archive a sender streams.
const (
	// paxDelete marks an entry the receiver removes (with its contents).
	paxDelete = "TENANTFLOW.delete"
	// paxUnsettled marks a file modified too recently to trust its time:
	// the receiver gives it the epoch as its time, so the next pass sends
	// it again.
	paxUnsettled = "TENANTFLOW.unsettled"
)

// Applied is what a pass changed on the receiver.
type Applied struct {
	Files   int   `json:"files"`
	Dirs    int   `json:"dirs"`
	Links   int   `json:"links"`
	Deleted int   `json:"deleted"`
	Bytes   int64 `json:"bytes"`
}

// apply writes the archive's entries into the volume directory dir. No
// entry reaches outside it (os.Root refuses, whatever links the volume or
// the archive hold). A file is written beside its place and renamed over
// it once complete, so a reader (or an interrupted pass) never sees half
// a file under its name. Everything is flushed to disk before apply
// returns.
func apply(dir string, r io.Reader) (Applied, error) {
	var out Applied
	root, err := os.OpenRoot(dir)
	if err != nil {
		return out, err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("archive: %w", err)
		}
		if err := applyEntry(root, hdr, tr, &out); err != nil {
			return out, err
		}
	}
	return out, syncFS(dir)
}

func applyEntry(root *os.Root, hdr *tar.Header, tr *tar.Reader, out *Applied) error {
	name := path.Clean(hdr.Name)
	if err := checkPath(name); err != nil {
		return err
	}
	if hdr.PAXRecords[paxDelete] != "" {
		if name == "." {
			return errors.New("the archive deletes the volume's root")
		}
		out.Deleted++
		// Gone already when a parent became a file earlier in the pass.
		if err := root.RemoveAll(name); err != nil && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		return nil
	}
	mode := hdr.FileInfo().Mode() & modeBits
	switch hdr.Typeflag {
	case tar.TypeDir:
		out.Dirs++
		if name != "." {
			if err := replaceWith(root, name, true); err != nil {
				return err
			}
			if err := root.MkdirAll(name, 0o700); err != nil {
				return err
			}
		}
		return setMeta(root, name, hdr.Uid, hdr.Gid, mode)
	case tar.TypeReg:
		out.Files++
		n, err := writeFile(root, name, hdr, tr, mode)
		out.Bytes += n
		return err
	case tar.TypeSymlink:
		out.Links++
		if err := root.RemoveAll(name); err != nil {
			return err
		}
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return err
		}
		return root.Lchown(name, hdr.Uid, hdr.Gid)
	}
	return fmt.Errorf("entry %s: type %q is not copied", name, hdr.Typeflag)
}

// replaceWith removes what stands at name unless it is already of the
// kind to come (a directory, or not one).
func replaceWith(root *os.Root, name string, dir bool) error {
	fi, err := root.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir() == dir:
		return nil
	}
	return root.RemoveAll(name)
}

// writeFile writes the entry's content beside name, sets its owner, mode
// and time, and renames it into place.
func writeFile(root *os.Root, name string, hdr *tar.Header, content io.Reader, mode fs.FileMode) (int64, error) {
	if err := replaceWith(root, name, false); err != nil {
		return 0, err
	}
	tmp := path.Join(path.Dir(name), tmpPrefix+randomSuffix())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = setMeta(root, tmp, hdr.Uid, hdr.Gid, mode)
	}
	if err == nil {
		t := hdr.ModTime
		if hdr.PAXRecords[paxUnsettled] != "" {
			t = time.Unix(0, 0)
		}
		err = root.Chtimes(tmp, t, t)
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return n, fmt.Errorf("file %s: %w", name, err)
	}
	return n, nil
}

// setMeta gives name its owner, then its mode (a change of owner clears
// the setuid and setgid bits).
func setMeta(root *os.Root, name string, uid, gid int, mode fs.FileMode) error {
	if err := root.Chown(name, uid, gid); err != nil {
		return err
	}
	return root.Chmod(name, mode)
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
