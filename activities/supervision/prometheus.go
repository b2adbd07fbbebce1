package supervision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/temporal"
)

// PrometheusDriver registers a tenant by writing a file_sd target file that
// Prometheus watches (deploy/prometheus/prometheus.yml globs
// tenantflow-*.json); the blackbox exporter probes the URL and the
// TenantDown rule alerts. Nothing talks to Prometheus on the way, so a
// Prometheus restart never fails a provisioning.
type PrometheusDriver struct {
	dir  string
	url  string // optional, for Check
	http *http.Client
	log  *slog.Logger
}

// NewPrometheusDriver builds the driver; it does no I/O.
func NewPrometheusDriver(cfg PrometheusConfig, timeout time.Duration, log *slog.Logger) (*PrometheusDriver, error) {
	if cfg.SDDir == "" {
		return nil, fmt.Errorf("%s is empty", EnvPrometheusSDDir)
	}
	if log == nil {
		log = slog.Default()
	}
	return &PrometheusDriver{
		dir:  filepath.Clean(cfg.SDDir),
		url:  strings.TrimSuffix(cfg.URL, "/"),
		http: &http.Client{Timeout: timeout},
		log:  log,
	}, nil
}

// TargetFile is where a tenant's file_sd entry lives. The name matches the
// shipped glob; temporary files start with a dot and so never do.
func (d *PrometheusDriver) TargetFile(tenant string) string {
	return filepath.Join(d.dir, "tenantflow-"+tenant+".json")
}

// targetGroup is one entry of a file_sd file.
type targetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// OwnerLabel is the target group label that names the provisioning run that
// registered the tenant. It starts with "__", so Prometheus drops it after
// relabeling: it never becomes part of the tenant's series.
const OwnerLabel = "__tenantflow_owner"

// Watch writes the tenant's target file atomically (temporary file in the
// same directory, then rename, or a hard link where no file exists yet, so
// two writers cannot both create it), so Prometheus never reads half a
// file. An identical file is left alone; another run's is refused.
func (d *PrometheusDriver) Watch(ctx context.Context, in WatchInput) error {
	labels := map[string]string{"tenant": in.Tenant}
	if in.Stage != "" {
		labels["stage"] = in.Stage
	}
	if in.Owner != "" {
		labels[OwnerLabel] = in.Owner
	}
	content, err := json.Marshal([]targetGroup{{Targets: []string{in.URL}, Labels: labels}})
	if err != nil {
		return fmt.Errorf("encode targets of tenant %s: %w", in.Tenant, err)
	}
	content = append(content, '\n')
	path := d.TargetFile(in.Tenant)
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = createAtomic(path, content)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("prometheus target file for tenant %s appeared meanwhile, looking again", in.Tenant)
		}
	case err != nil:
		return fsError(fmt.Sprintf("read prometheus target file for tenant %s", in.Tenant), err)
	case bytes.Equal(old, content):
		d.log.DebugContext(ctx, "prometheus target file already current", "tenant", in.Tenant, "file", path)
		return nil
	default:
		got, stamped, perr := fileOwner(old, in.Tenant)
		if perr != nil && in.Owner != "" {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("prometheus target file %s exists but is not Tenantflow's for tenant %s: %v", path, in.Tenant, perr), ErrConflict, nil)
		}
		if !mayTouch(in.Owner, got, stamped, in.Adopt) {
			return notOurs("prometheus target file "+path, in.Tenant, in.Owner, got, stamped)
		}
		err = writeAtomic(path, content)
	}
	if err != nil {
		return fsError(fmt.Sprintf("write prometheus target file for tenant %s", in.Tenant), err)
	}
	d.log.InfoContext(ctx, "prometheus target file written", "tenant", in.Tenant, "file", path, "url", in.URL)
	return nil
}

// fileOwner reads the owner a target file names (stamped false: none).
func fileOwner(content []byte, tenant string) (owner string, stamped bool, err error) {
	var groups []targetGroup
	if err := json.Unmarshal(content, &groups); err != nil {
		return "", false, err
	}
	if len(groups) == 0 {
		return "", false, errors.New("no target group")
	}
	for _, g := range groups {
		if g.Labels["tenant"] != tenant {
			return "", false, fmt.Errorf("label tenant is %q", g.Labels["tenant"])
		}
	}
	owner, stamped = groups[0].Labels[OwnerLabel]
	return owner, stamped, nil
}

// createAtomic writes content to path only if path does not exist: a
// complete temporary file is hard-linked there (fs.ErrExist if another
// writer was first).
func createAtomic(path string, content []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Link(tmp, path)
}

// writeAtomic replaces path with content through a rename. The file is made
// world-readable: Prometheus runs as another user than the worker.
func writeAtomic(path string, content []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(content); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Unwatch deletes the tenant's target file; Prometheus drops the target.
// Another run's file is left alone with a warning.
func (d *PrometheusDriver) Unwatch(ctx context.Context, ref WatchRef) error {
	path := d.TargetFile(ref.Tenant)
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fsError(fmt.Sprintf("read prometheus target file for tenant %s", ref.Tenant), err)
	}
	got, stamped, perr := fileOwner(content, ref.Tenant)
	if ref.Owner != "" && (perr != nil || !mayTouch(ref.Owner, got, stamped, ref.Adopt)) {
		d.log.WarnContext(ctx, "prometheus target file is not this provisioning's: left alone", "tenant", ref.Tenant, "file", path, "madeBy", got)
		return nil
	}
	err = os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fsError(fmt.Sprintf("remove prometheus target file for tenant %s", ref.Tenant), err)
	}
	d.log.InfoContext(ctx, "prometheus target file removed", "tenant", ref.Tenant, "file", path)
	return nil
}

// Check proves the directory takes files and, when PROMETHEUS_URL is set,
// that Prometheus is ready.
func (d *PrometheusDriver) Check(ctx context.Context) error {
	f, err := os.CreateTemp(d.dir, ".tenantflow-check.*.tmp")
	if err != nil {
		return fsError("check prometheus target directory", err)
	}
	f.Close()
	os.Remove(f.Name())
	if d.url == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url+"/-/ready", nil)
	if err != nil {
		return fmt.Errorf("check prometheus: %w", err)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return fmt.Errorf("check prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("check prometheus %s/-/ready: status %d: %s", d.url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// fsError marks what only an operator can fix (missing or read-only
// directory, a file where the directory should be) as non-retryable; other
// errors (disk full, I/O) may pass and are retried.
func fsError(op string, err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOTDIR) {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: %v (check %s)", op, err, EnvPrometheusSDDir), ErrMisconfigured, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
