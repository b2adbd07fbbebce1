package temporaltest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tenantflow/tenantflow/internal/devserver"
	"github.com/tenantflow/tenantflow/internal/temporalx"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
)

// ClusterToolsEnv names the directory of temporal-server,
// temporal-sql-tool and the schema (tools/temporal/build-tools.sh; `make
// temporal-tools` builds them, CI too).
const ClusterToolsEnv = "TENANTFLOW_TEMPORAL_TOOLS"

// Cluster is the full Temporal server (not start-dev) on PostgreSQL
// persistence and SQL visibility, set up as an operator would: schemas
// by temporal-sql-tool, the namespace registered, the search attributes
// added.
type Cluster struct {
	*Temporal
	Postgres *harness.Postgres
	proc     *harness.Process
}

// StartCluster starts PostgreSQL and the server on free loopback ports
// for the test, and stops them when it ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	tools := clusterTools(t)
	pg := harness.StartPostgres(t)
	pg.SQL("postgres", "CREATE DATABASE temporal OWNER "+pg.Role, "CREATE DATABASE temporal_visibility OWNER "+pg.Role)
	pg.SQL("temporal_visibility", "CREATE EXTENSION IF NOT EXISTS btree_gin")
	for db, schema := range map[string]string{"temporal": "temporal", "temporal_visibility": "visibility"} {
		sqlTool(t, tools, pg, db, "setup-schema", "-v", "0.0")
		sqlTool(t, tools, pg, db, "update-schema", "-d", filepath.Join(tools, "schema", "postgresql", "v12", schema, "versioned"))
	}
	dir := t.TempDir()
	frontend := lowPort(t)
	if err := writeClusterConfig(t, dir, pg, frontend); err != nil {
		t.Fatal(err)
	}
	proc := harness.NewProcess(t, dir, nil, filepath.Join(tools, "temporal-server"),
		"--root", dir, "--config", "config", "--env", "development", "--allow-no-auth", "start")
	proc.Start()
	cfg := temporalx.Config{Namespace: "default", TaskQueue: "tenantflow-test", CodecKeys: TestCodecKeys, Address: harness.Addr(frontend)}
	harness.WaitFor(t, "temporal frontend", 2*time.Minute, harness.DialReady(cfg.Address))
	registerNamespace(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := temporalx.Dial(ctx, cfg, harness.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl := &Cluster{Temporal: &Temporal{Client: c, Config: cfg}, Postgres: pg, proc: proc}
	cl.cluster = cl
	return cl
}

// clusterTools is the directory the tools were built into.
func clusterTools(t testing.TB) string {
	t.Helper()
	harness.SkipShort(t, "the Temporal server")
	dir := os.Getenv(ClusterToolsEnv)
	if dir == "" {
		home, _ := os.UserCacheDir()
		matches, _ := filepath.Glob(filepath.Join(home, "tenantflow", "temporal-server-*"))
		if len(matches) > 0 {
			dir = matches[len(matches)-1]
		}
	}
	for _, f := range []string{"temporal-server", "temporal-sql-tool", "schema/postgresql"} {
		if _, err := os.Stat(filepath.Join(dir, f)); dir == "" || err != nil {
			harness.Unavailable(t, "the Temporal server tools are not built (make temporal-tools, or %s): %s missing", ClusterToolsEnv, f)
		}
	}
	return dir
}

func sqlTool(t testing.TB, tools string, pg *harness.Postgres, db string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(tools, "temporal-sql-tool"), append([]string{"--plugin", "postgres12", "--ep", "127.0.0.1",
		"-p", fmt.Sprint(pg.Port), "-u", pg.Role, "--pw", pg.Password, "--db", db}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("temporal-sql-tool %s %v: %v\n%s", db, args, err, out)
	}
}

// writeClusterConfig writes config/development.yaml and the dynamic
// config the dev server gets from `tenantflow dev` (devserver).
func writeClusterConfig(t testing.TB, dir string, pg *harness.Postgres, frontend int) error {
	ports := map[string]int{}
	for _, name := range []string{"frontendMembership", "frontendHTTP", "history", "historyMembership", "matching",
		"matchingMembership", "worker", "workerMembership", "metrics"} {
		ports[name] = lowPort(t)
	}
	store := func(db string, conns int) string {
		return fmt.Sprintf(`      sql:
        pluginName: "postgres12"
        databaseName: %q
        connectAddr: %q
        connectProtocol: "tcp"
        user: %q
        password: %q
        maxConns: %d
        maxIdleConns: %d
        maxConnLifetime: "1h"
`, db, pg.Addr, pg.Role, pg.Password, conns, conns)
	}
	service := func(grpc, membership int, extra string) string {
		return fmt.Sprintf("    rpc:\n      grpcPort: %d\n      membershipPort: %d\n      bindOnLocalHost: true\n%s", grpc, membership, extra)
	}
	config := `log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: 4
  datastores:
    postgres-default:
` + store("temporal", 20) + `    postgres-visibility:
` + store("temporal_visibility", 10) + fmt.Sprintf(`global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "127.0.0.1"
  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: "127.0.0.1:%d"
services:
  frontend:
`, ports["metrics"]) + service(frontend, ports["frontendMembership"], fmt.Sprintf("      httpPort: %d\n", ports["frontendHTTP"])) +
		"  matching:\n" + service(ports["matching"], ports["matchingMembership"], "") +
		"  history:\n" + service(ports["history"], ports["historyMembership"], "") +
		"  worker:\n" + service(ports["worker"], ports["workerMembership"], "") + fmt.Sprintf(`clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "127.0.0.1:%d"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: %q
  pollInterval: "10s"
`, frontend, filepath.Join(dir, "config", "dynamic.yaml"))
	var dyn strings.Builder
	for _, kv := range slices.Concat(devserver.DynamicConfig, clusterDynamicConfig) {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&dyn, "%s:\n  - value: %s\n", k, v)
	}
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config", "development.yaml"), []byte(config), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config", "dynamic.yaml"), []byte(dyn.String()), 0o644)
}

// clusterDynamicConfig is what start-dev turns on by itself and the
// workflows use: Updates, update-with-start, search attributes seen at
// once.
var clusterDynamicConfig = []string{
	"frontend.enableUpdateWorkflowExecution=true",
	"frontend.enableUpdateWorkflowExecutionAsyncAccepted=true",
	"frontend.enableExecuteMultiOperation=true",
	"system.forceSearchAttributesCacheRefreshOnRead=true",
}

// lowPort is a free loopback port below 32768: the server records its
// services' ports in a smallint column (cluster_membership.rpc_port), and
// the kernel's ephemeral range starts above it.
func lowPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", harness.Addr(port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port between 20000 and 32000")
	return 0
}

// registerNamespace registers "default" and the workflows' search
// attributes, as an operator does on a new cluster, and waits until the
// namespace answers.
func registerNamespace(t testing.TB, cfg temporalx.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var c client.Client
	harness.WaitFor(t, "a healthy frontend", 2*time.Minute, func() error {
		var err error
		c, err = client.Dial(client.Options{HostPort: cfg.Address})
		return err
	})
	defer c.Close()
	harness.WaitFor(t, "namespace registration", time.Minute, func() error {
		_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace: cfg.Namespace, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			return err
		}
		return nil
	})
	attrs := map[string]enumspb.IndexedValueType{}
	for _, k := range searchattr.Keys {
		attrs[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	harness.WaitFor(t, "search attributes", time.Minute, func() error {
		_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: cfg.Namespace, SearchAttributes: attrs})
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			return err
		}
		resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: cfg.Namespace})
		if err != nil {
			return err
		}
		for name := range attrs {
			if _, ok := resp.GetCustomAttributes()[name]; !ok {
				return fmt.Errorf("search attribute %s not listed yet", name)
			}
		}
		return nil
	})
}
