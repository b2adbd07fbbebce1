package backup

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/temporal"
)

// open reads a file of the backup through a.Open (a test's faulty disk) or
// os.Open.
func (a *Activities) open(name string) (io.ReadCloser, error) {
	if a.Open != nil {
		return a.Open(name)
	}
	return os.Open(name)
}

// openChecked opens the backup's file name in dir and reads it once, end
// to end: it must have the size and SHA-256 the manifest gives, or nothing
// is restored from it (a non-retryable ErrVerificationFailed). It returns
// the file open at its start, so what is restored next is the file that was
// checked, even if its name is replaced meanwhile; a reader that cannot
// seek (a test's) is opened again. what names the file in errors.
func (a *Activities) openChecked(ctx context.Context, dir, name string, size int64, sum, what string, p *progress) (io.ReadCloser, error) {
	path := filepath.Join(dir, name)
	r, err := a.open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p.stage("check "+name, size)
	if err := a.checkContent(ctx, r, size, sum, what, p); err != nil {
		r.Close()
		return nil, err
	}
	if s, ok := r.(io.Seeker); ok {
		if _, err := s.Seek(0, io.SeekStart); err != nil {
			r.Close()
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return r, nil
	}
	r.Close()
	if r, err = a.open(path); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return r, nil
}

// openAll opens n files in order with open (openChecked): all of them, or
// none, the opened ones closed at the first failure.
func openAll(n int, open func(i int) (io.ReadCloser, error)) ([]io.ReadCloser, error) {
	files := make([]io.ReadCloser, 0, n)
	for i := range n {
		r, err := open(i)
		if err != nil {
			closeAll(files)
			return nil, err
		}
		files = append(files, r)
	}
	return files, nil
}

func closeAll(files []io.ReadCloser) {
	for _, f := range files {
		f.Close()
	}
}

// checkContent reads r to its end (never more than one byte past size)
// and compares its size and SHA-256 with the manifest's.
func (a *Activities) checkContent(ctx context.Context, r io.Reader, size int64, sum, what string, p *progress) error {
	bp := a.buf()
	defer a.putBuf(bp)
	h := sha256.New()
	lr := io.LimitReader(r, size+1)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := lr.Read(*bp)
		h.Write((*bp)[:m])
		n += int64(m)
		p.add(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: read: %w", what, err)
		}
	}
	if got := hexSum(h); n != size || got != sum {
		msg := fmt.Sprintf("%s: %d bytes with sha256 %s, the manifest says %d bytes with %s", what, n, got, size, sum)
		if n > size {
			msg = fmt.Sprintf("%s: more than %d bytes, the manifest says %d", what, size, size)
		}
		return temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
	}
	return nil
}

// tripwire streams a checked file a second time, to a restore command,
// hashing it again: it ends after the manifest's size and withholds the
// last bytes unless the whole hashes as the check did, so a file changed
// between the two reads is never fed complete. A restore command may have
// applied the part it was fed: the check before is the protection, this
// is the alarm.
type tripwire struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	size int64
	sum  string
	what string
	p    *progress
	err  error
}

func newTripwire(r io.Reader, size int64, sum, what string, p *progress) *tripwire {
	return &tripwire{r: r, h: sha256.New(), size: size, sum: sum, what: what, p: p}
}

func (t *tripwire) Read(b []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	if t.n == t.size {
		return 0, io.EOF
	}
	if rem := t.size - t.n; int64(len(b)) > rem {
		b = b[:rem]
	}
	n, err := t.r.Read(b)
	t.h.Write(b[:n])
	t.n += int64(n)
	switch {
	case t.n == t.size:
		if got := hexSum(t.h); got != t.sum {
			msg := fmt.Sprintf("%s changed while it was read: sha256 %s, the manifest says %s", t.what, got, t.sum)
			t.err = temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
			return 0, t.err
		}
		t.p.add(n)
		return n, nil
	case err == io.EOF:
		msg := fmt.Sprintf("%s shrank while it was read: %d bytes, the manifest says %d", t.what, t.n, t.size)
		t.err = temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
		return 0, t.err
	case err != nil:
		t.err = fmt.Errorf("%s: read: %w", t.what, err)
		return 0, t.err
	}
	t.p.add(n)
	return n, nil
}

// failed is the tripwire's own failure, which explains the restore
// command's (it saw its input end early) better than that does.
func (t *tripwire) failed(cmdErr error) error {
	if t.err != nil {
		return t.err
	}
	return cmdErr
}
