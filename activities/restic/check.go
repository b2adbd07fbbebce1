package restic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"
)

// checkTimeout bounds each probe of Check.
const checkTimeout = 10 * time.Second

// Check is the restic backups as the worker's start-up and health checks
// see them.
type Check struct{ Config Config }

// Check reports whether backups can run: restic runs, the repositories'
// and keys' directories are writable, and the off-site server (when
// configured) answers and accepts the worker's credential. Nothing is
// checked when backups are not configured.
func (c Check) Check(ctx context.Context) error {
	if !c.Config.Enabled() {
		return nil
	}
	if err := c.Config.Validate(); err != nil {
		return fmt.Errorf("restic config: %w", err)
	}
	if err := checkBinary(ctx, c.Config.Binary); err != nil {
		return err
	}
	for _, d := range []struct{ env, dir string }{{EnvRepos, c.Config.Repos}, {EnvKeys, c.Config.Keys}} {
		if err := writable(d.dir); err != nil {
			return fmt.Errorf("%s=%s: %w", d.env, d.dir, err)
		}
	}
	if c.Config.Offsite() {
		return c.offsite(ctx)
	}
	return nil
}

// checkBinary checks that bin (default: restic) runs and is restic.
func checkBinary(ctx context.Context, bin string) error {
	rctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if bin == "" {
		bin = "restic"
	}
	out, err := exec.CommandContext(rctx, bin, "version").Output()
	if err != nil {
		return fmt.Errorf("restic (%s=%s) does not run: %w", EnvBinary, bin, err)
	}
	if !strings.HasPrefix(string(out), "restic ") {
		return fmt.Errorf("%s=%s is not restic: it says %q", EnvBinary, bin, strings.TrimSpace(string(out)))
	}
	return nil
}

// writable checks that a file can be made in dir.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".check-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// offsite asks the off-site server for the worker's directory: any answer
// but a refusal of the credential (401, 403) or a server error says the
// server is there and takes us.
func (c Check) offsite(ctx context.Context) error {
	u, err := url.Parse(c.Config.OffsiteURL)
	if err != nil {
		return fmt.Errorf("%s: %w", EnvOffsiteURL, err)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + c.Config.OffsiteUser + "/"
	status, err := ask(ctx, http.MethodGet, u, c.Config.OffsiteUser, c.Config.OffsitePassword)
	switch {
	case err != nil:
		return fmt.Errorf("off-site server %s (%s) is unreachable: %w", u, EnvOffsiteURL, err)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("off-site server %s refuses user %s (%s, %s): %s", u, c.Config.OffsiteUser, EnvOffsiteUser, EnvOffsitePassword, statusLine(status))
	case status >= 500:
		return fmt.Errorf("off-site server %s fails: %s", u, statusLine(status))
	}
	return nil
}

// ask sends one request without a body to an off-site server as user
// and returns the answer's status. The URL in errors holds no
// credential (it goes in a header).
func ask(ctx context.Context, method string, u *url.URL, user, password string) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, u.String(), nil)
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the caller names the URL
		}
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// statusLine is an HTTP status as a server's status line says it.
func statusLine(status int) string {
	return fmt.Sprintf("%d %s", status, http.StatusText(status))
}
