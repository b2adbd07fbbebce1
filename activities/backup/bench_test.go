package backup

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// BenchmarkBackupVerify compares backup+verify of a 200 MB volume (40
// random 5 MB files and 200 small ones) with a plain `tar -cf` of the same
// data in the same run; the target is a ratio of at least 0.8.
//
//	go test -run '^$' -bench BackupVerify -benchtime 5x ./activities/backup/
func BenchmarkBackupVerify(b *testing.B) {
	tarCmd, err := exec.LookPath("tar")
	if err != nil {
		b.Skip("no tar to compare with")
	}
	ctx := context.Background()
	host := &dirHost{vols: b.TempDir(), scratch: b.TempDir()}
	src := filepath.Join(host.vols, tenant, "data")
	data := harness.WriteBenchVolume(b, src)
	a, err := New(Config{Dir: b.TempDir(), Retention: time.Hour}, host, nil)
	if err != nil {
		b.Fatal(err)
	}
	plain := filepath.Join(b.TempDir(), "plain.tar")

	runTar := func() time.Duration {
		start := time.Now()
		if out, err := exec.Command(tarCmd, "-cf", plain, "-C", src, ".").CombinedOutput(); err != nil {
			b.Fatalf("tar: %v: %s", err, out)
		}
		return time.Since(start)
	}
	var tarT, backupT, verifyT time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		os.Remove(plain)
		b.StartTimer()
		// Alternate the order: each side's dirty pages are written back
		// while the other runs.
		if i%2 == 0 {
			tarT += runTar()
		}
		in := BackupInput{Tenant: tenant, ID: fmt.Sprintf("bench-%d", i), Volumes: []string{"data"}}
		start := time.Now()
		bk, err := a.BackupVolumes(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if _, err := a.VerifyBackup(ctx, BackupRef{Tenant: tenant, ID: in.ID, ManifestSHA256: bk.ManifestSHA256}); err != nil {
			b.Fatal(err)
		}
		backupT += mid.Sub(start)
		verifyT += time.Since(mid)
		if i%2 == 1 {
			tarT += runTar()
		}
		b.StopTimer()
		if err := a.RemoveBackup(ctx, BackupRef{Tenant: tenant, ID: in.ID}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	mb := float64(data) / (1 << 20) * float64(b.N)
	rate := func(d time.Duration) float64 { return mb / d.Seconds() }
	b.ReportMetric(rate(tarT), "tar-MB/s")
	b.ReportMetric(rate(backupT+verifyT), "backup+verify-MB/s")
	b.ReportMetric(rate(backupT), "backup-MB/s")
	b.ReportMetric(rate(verifyT), "verify-MB/s")
	b.ReportMetric(tarT.Seconds()/(backupT+verifyT).Seconds(), "ratio")
}
