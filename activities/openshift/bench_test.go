package openshift_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenantflow/tenantflow/activities/openshift"
)

// BenchmarkProvisionOnCluster provisions tenants with the driver alone
// (no Temporal) until their Deployments are Available: what the cluster
// itself takes, to set the end-to-end figure of
// BenchmarkOpenShiftProvision against. One tenant, and 20 at once.
func BenchmarkProvisionOnCluster(b *testing.B) {
	c := cluster(b)
	d := newDriver(b, c, func(cfg *openshift.Config) { cfg.PollInterval = time.Second })
	kc := kubernetes.NewForConfigOrDie(c.Config)
	ctx := context.Background()
	seq := 0
	run := func(b *testing.B, n int) {
		var total time.Duration
		for range b.N {
			names := make([]string, n)
			for i := range names {
				seq++
				names[i] = fmt.Sprintf("bench-%d", seq)
			}
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for _, name := range names {
				wg.Go(func() {
					env := environment(name)
					if err := d.CreateNetwork(ctx, name, owner); err != nil {
						errs <- err
						return
					}
					if err := d.CreateVolumes(ctx, name, owner, env.Volumes); err != nil {
						errs <- err
						return
					}
					for _, s := range env.Services {
						if _, err := d.StartService(ctx, name, owner, s); err != nil {
							errs <- err
							return
						}
					}
					if _, err := d.WaitHealthy(ctx, env, func(string) {}); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			total += time.Since(start)
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.StopTimer()
			for _, name := range names {
				_ = kc.CoreV1().Namespaces().Delete(ctx, d.Namespace(name), metav1.DeleteOptions{})
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/batch")
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N*n), "ms/tenant")
	}
	b.Run("one", func(b *testing.B) { run(b, 1) })
	b.Run("parallel-20", func(b *testing.B) { run(b, 20) })
}
