package openshift_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/kube"
)

// logLine is what a test writes into a pod's log and expects back.
type logLine struct {
	service string
	at      time.Duration // after the test's t0
	line    string
}

// servePodLogs makes kwok serve a log file for each of the tenant's pods
// and writes the service's lines into it.
func servePodLogs(t *testing.T, c *kube.ControlPlane, kc kubernetes.Interface, tenant string, t0 time.Time, lines []logLine) map[string]string {
	t.Helper()
	ctx := context.Background()
	ns := "tf-" + tenant
	pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: openshift.LabelTenant + "=" + tenant})
	require.NoError(t, err)
	files := map[string]string{}
	for _, p := range pods.Items {
		svc := p.Labels[openshift.LabelService]
		path, err := c.ServePodLogs(ctx, ns, p.Name)
		require.NoError(t, err)
		files[svc] = path
		for _, l := range lines {
			if l.service == svc {
				require.NoError(t, kube.AppendPodLog(path, t0.Add(l.at), "stdout", l.line))
			}
		}
	}
	require.Len(t, files, 2, "a pod per service of %s", tenant)
	return files
}

// readLogs reads without following and returns the lines' texts.
func readLogs(t *testing.T, d *openshift.Driver, in runtimes.LogsInput) []runtimes.LogLine {
	t.Helper()
	var got []runtimes.LogLine
	require.NoError(t, d.Logs(context.Background(), in, func(l runtimes.LogLine) error {
		got = append(got, l)
		return nil
	}))
	return got
}

func texts(lines []runtimes.LogLine) []string {
	out := []string{}
	for _, l := range lines {
		out = append(out, l.Line)
	}
	return out
}

func TestLogsReadThroughTheAPIServer(t *testing.T) {
	c, worker, kc := setup(t)
	// The API reads with the account deploy/openshift/rbac.yaml grants.
	reader, err := openshift.New(context.Background(), openshift.Config{Kubeconfig: c.Kubeconfig, NamespacePrefix: "tf-", VolumeSize: "1Gi"}, workerConfig(t, c), harness.Logger(t))
	require.NoError(t, err)
	// One tenant's name is a prefix of the other's: neither sees the
	// other's lines.
	a, b := "logs", "logsx"
	provision(t, worker, environment(a))
	provision(t, worker, environment(b))
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	filesA := servePodLogs(t, c, kc, a, t0, []logLine{
		{"app", 1 * time.Second, "a-app-1"}, {"db", 2 * time.Second, "a-db-1"}, {"app", 3 * time.Second, "a-app-2"},
		{"db", 4 * time.Second, "a-db-2"}, {"app", 5 * time.Second, "a-app-3 with spaces"},
	})
	servePodLogs(t, c, kc, b, t0, []logLine{{"app", 2500 * time.Millisecond, "b-app-1"}, {"db", 3 * time.Second, "b-db-1"}})

	all := runtimes.LogsInput{Tenant: a, Owner: owner}
	// kwok learns of its Logs objects by watch: until then pods/log
	// answers 400.
	harness.WaitFor(t, "pod logs served", 30*time.Second, func() error {
		var n int
		err := reader.Logs(context.Background(), all, func(runtimes.LogLine) error { n++; return nil })
		if err == nil && n != 5 {
			err = fmt.Errorf("%d lines of 5", n)
		}
		return err
	})
	got := readLogs(t, reader, all)
	require.Equal(t, []string{"a-app-1", "a-db-1", "a-app-2", "a-db-2", "a-app-3 with spaces"}, texts(got), "time order, across pods")
	require.Equal(t, runtimes.LogLine{Time: t0.Add(time.Second).UTC(), Service: "app", Generation: 0, Line: "a-app-1"}, got[0])
	require.True(t, got[1].Time.Equal(t0.Add(2*time.Second)))
	require.Equal(t, "db", got[1].Service)

	harness.WaitFor(t, "pod logs served", 30*time.Second, func() error {
		var got []string
		err := reader.Logs(context.Background(), runtimes.LogsInput{Tenant: b, Owner: owner}, func(l runtimes.LogLine) error {
			got = append(got, l.Line)
			return nil
		})
		if err == nil && fmt.Sprint(got) != "[b-app-1 b-db-1]" {
			err = fmt.Errorf("tenant %s: %q", b, got)
		}
		return err
	})
	require.Empty(t, readLogs(t, reader, runtimes.LogsInput{Tenant: a, Owner: "another-provisioning"}), "another provisioning's pods")

	// A pod labelled as the tenant's app but no ReplicaSet's of this
	// provisioning's Deployments (left by an earlier run of the name, or
	// made by hand) never shows, though running with a log.
	ctx := context.Background()
	apps, err := kc.CoreV1().Pods("tf-"+a).List(ctx, metav1.ListOptions{LabelSelector: openshift.LabelTenant + "=" + a + "," + openshift.LabelService + "=app"})
	require.NoError(t, err)
	require.NotEmpty(t, apps.Items)
	// Without the ReplicaSet's pod-template-hash, which would have it
	// adopt the pod (and delete it, one too many).
	strayLabels := maps.Clone(apps.Items[0].Labels)
	delete(strayLabels, "pod-template-hash")
	stray := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stray-app", Namespace: "tf-" + a, Labels: strayLabels}, Spec: apps.Items[0].Spec}
	_, err = kc.CoreV1().Pods("tf-"+a).Create(ctx, stray, metav1.CreateOptions{})
	require.NoError(t, err)
	strayLog, err := c.ServePodLogs(ctx, "tf-"+a, "stray-app")
	require.NoError(t, err)
	require.NoError(t, kube.AppendPodLog(strayLog, t0.Add(1500*time.Millisecond), "stdout", "stray"))
	harness.WaitFor(t, "the stray pod's log served", 30*time.Second, func() error {
		raw, err := kc.CoreV1().Pods("tf-"+a).GetLogs("stray-app", &corev1.PodLogOptions{Container: "app", Timestamps: true}).DoRaw(ctx)
		if err == nil && !strings.Contains(string(raw), "stray") {
			err = fmt.Errorf("log %q", raw)
		}
		return err
	})
	harness.WaitFor(t, "the stray pod running", 30*time.Second, func() error {
		p, err := kc.CoreV1().Pods("tf-"+a).Get(ctx, "stray-app", metav1.GetOptions{})
		if err == nil && (len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Running == nil) {
			err = fmt.Errorf("not running yet: %s %+v", p.Status.Phase, p.Status.ContainerStatuses)
		}
		return err
	})
	require.Equal(t, []string{"a-app-1", "a-db-1", "a-app-2", "a-db-2", "a-app-3 with spaces"}, texts(readLogs(t, reader, all)), "not the stray pod's")
	require.Equal(t, []string{"a-db-1", "a-db-2"}, texts(readLogs(t, reader, runtimes.LogsInput{Tenant: a, Owner: owner, Service: "db"})))
	require.Equal(t, []string{"a-db-2", "a-app-3 with spaces"}, texts(readLogs(t, reader, runtimes.LogsInput{Tenant: a, Owner: owner, Tail: 2})),
		"the tenant's last lines, not each pod's")
	require.Equal(t, []string{"a-app-2", "a-db-2", "a-app-3 with spaces"},
		texts(readLogs(t, reader, runtimes.LogsInput{Tenant: a, Owner: owner, Since: t0.Add(2500 * time.Millisecond)})),
		"since, to the nanosecond (the server takes whole seconds)")

	t.Run("follow", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		lines := make(chan runtimes.LogLine, 10)
		done := make(chan error, 1)
		go func() {
			done <- reader.Logs(ctx, runtimes.LogsInput{Tenant: a, Owner: owner, Service: "app", Follow: true}, func(l runtimes.LogLine) error {
				lines <- l
				return nil
			})
		}()
		next := func() runtimes.LogLine {
			select {
			case l := <-lines:
				return l
			case err := <-done:
				t.Fatalf("follow ended early: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("no line after 20s")
			}
			return runtimes.LogLine{}
		}
		for _, want := range []string{"a-app-1", "a-app-2", "a-app-3 with spaces"} {
			require.Equal(t, want, next().Line)
		}
		now := time.Now()
		require.NoError(t, kube.AppendPodLog(filesA["app"], now, "stderr", "a-app-live"))
		l := next()
		require.Equal(t, "a-app-live", l.Line)
		require.True(t, l.Time.Equal(now.Truncate(time.Nanosecond)), "time %s, written %s", l.Time, now)
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "a follow ends quietly with its request")
		case <-time.After(10 * time.Second):
			t.Fatal("follow did not end with its context")
		}
	})
}
