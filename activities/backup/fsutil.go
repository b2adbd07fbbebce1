package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/temporal"
)

// bufSize is the unit of every read and write of file data: large enough
// that system calls and channel hand-offs cost nothing next to hashing.
const bufSize = 1 << 20

// buf takes a data buffer from the pool; the pool's zero value works, so
// an Activities literal needs no set-up.
func (a *Activities) buf() *[]byte {
	if p, ok := a.bufs.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, bufSize)
	return &b
}

func (a *Activities) putBuf(p *[]byte) { a.bufs.Put(p) }

// passOn returns err unchanged when it is (or wraps) a Temporal
// ApplicationError, whose type and retry policy must reach the SDK as the
// outermost error, and wraps anything else with context.
func passOn(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}

// writeAtomic replaces dir/name with data so that a reader (or a crash)
// sees the old content or the new one, never a part: temporary file,
// fsync, rename, fsync of the directory.
func writeAtomic(dir, name string, data []byte) error {
	final := filepath.Join(dir, name)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return syncDir(dir)
}

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// sha256Hex is the lower-case hex SHA-256 of data.
func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// hashReader hashes and counts what is read through it, and keeps the
// reader's own error apart from the parser's above it: an I/O error of the
// backup location is worth a retry, a corrupt archive is not.
type hashReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (r *hashReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.h.Write(p[:n])
		r.n += int64(n)
	}
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
