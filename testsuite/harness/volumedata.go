package harness

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// WriteBenchVolume fills dir with the backup benchmarks' data: 200 MB in
// 40 files of 5 MB plus 200 small files in 20 directories, pseudo-random
// (incompressible, the same in every run). It syncs the data to disk so
// neither contender pays for writing it back, and returns its size.
func WriteBenchVolume(t testing.TB, dir string) int64 {
	t.Helper()
	rnd := rand.New(rand.NewChaCha8([32]byte{1}))
	var total int64
	write := func(p string, n int) {
		buf := make([]byte, n)
		for i := 0; i < n; i += 8 {
			v := rnd.Uint64()
			for j := 0; j < 8 && i+j < n; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(n)
	}
	for i := range 40 {
		write(fmt.Sprintf("big/blob-%02d.bin", i), 5<<20)
	}
	for i := range 200 {
		write(fmt.Sprintf("small/d%02d/f%03d.txt", i%20, i), 100+rnd.IntN(4000))
	}
	if out, err := exec.Command("sync").CombinedOutput(); err != nil {
		t.Logf("sync: %v: %s", err, out)
	}
	return total
}
