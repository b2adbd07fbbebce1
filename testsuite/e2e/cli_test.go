package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/internal/cli"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// TestCLIInATerminal uses the tenantflow CLI as a person does, in a real
// terminal (tmux) against the real platform: create a tenant and watch
// it provision, list it, read it as JSON, release a new image and watch
// the release through its promotion; then as a script does (no terminal):
// plain lines, and exit codes to branch on.
func TestCLIInATerminal(t *testing.T) {
	harness.RequireBinary(t, "tmux", "tmux")
	p := startPlatform(t)
	b := &releaseBench{t: t, p: p, reg: harness.StartRegistry(t, harness.RegistryOptions{})}
	bin := harness.BuildTenantflow(t)
	name := tenantName("cli")
	t.Cleanup(func() { p.destroy(name) })
	env := map[string]string{
		"PATH": filepath.Dir(bin) + ":" + os.Getenv("PATH"),
		"HOME": t.TempDir(), "TENANTFLOW_DATA_DIR": t.TempDir(), // no config file, no dev tokens: the environment's
		cli.EnvAPIURL: p.api.URL, cli.EnvToken: p.token,
	}
	term := harness.StartTerminal(t, 160, 50, env)

	// A tenant, followed to active with a progress bar.
	code, screen := term.Run("tenantflow tenants create "+name+" --stage prod --template light --wait", 3*time.Minute)
	require.Equal(t, cli.ExitOK, code, screen)
	require.Contains(t, screen, "tenant "+name+" is active: http")
	require.Regexp(t, `(?m)^tenant `+name+`: active$`, screen)
	require.Regexp(t, `(?m)^█{30} (\d+)/\d+ 100%$`, screen, "the progress bar, full")
	require.NotContains(t, screen, "\x1b", "escape sequences are the terminal's, not shown")

	// The list shows it in a table (visibility follows within a moment).
	harness.WaitFor(t, "tenants ls showing the tenant active", time.Minute, func() error {
		code, screen = term.Run("tenantflow tenants ls", time.Minute)
		if code != cli.ExitOK {
			return fmt.Errorf("exit %d: %s", code, screen)
		}
		if !regexp.MustCompile(`(?m)^` + name + `\s+active\s+prod\s+\S+\s+-\s+\d+[smh]$`).MatchString(screen) {
			return fmt.Errorf("no row of %s active: %s", name, screen)
		}
		return nil
	})
	require.Regexp(t, `(?m)^NAME\s+STATE\s+STAGE\s+IMAGE\s+RELEASE\s+AGE$`, screen)

	// -o json is the API's answer: it parses.
	code, screen = term.Run("tenantflow tenants get "+name+" -o json", time.Minute)
	require.Equal(t, cli.ExitOK, code, screen)
	var st tenant.Tenant
	require.NoError(t, json.Unmarshal([]byte(jsonLine(t, screen)), &st), screen)
	require.Equal(t, name, st.Name)
	require.Equal(t, tenant.StateActive, st.State)
	oldImage := st.Image

	// A release of a new image to the tenant: prod only, so staging is
	// done at once and the watch stops at the promotion, exit 0.
	image := b.pushDemo("cli2", false)
	id := "cli-" + name
	code, screen = term.Run(fmt.Sprintf("tenantflow releases create --image %s --tenants %s --id %s --drain 0s --watch", image, name, id), 2*time.Minute)
	require.Equal(t, cli.ExitOK, code, screen)
	require.Contains(t, screen, "tenants: none listed yet")
	require.Contains(t, screen, "release "+id+": staging done (no staging tenants), awaiting promotion: tenantflow releases promote "+id)

	// The developer promotes it and watches prod to the end.
	run := term.Start(fmt.Sprintf("TENANTFLOW_TOKEN=developer-%s tenantflow releases promote %s --reason 'QA ok' --watch", p.token, id))
	var during string // a screen while the tenant was being cut over
	code, screen = term.Wait(run, 3*time.Minute, func(s string) {
		if during == "" && regexp.MustCompile(`(?m)^`+name+`\s+prod\s+wave 1\s+updating`).MatchString(s) {
			during = s
		}
	})
	require.Equal(t, cli.ExitOK, code, screen)
	require.Contains(t, screen, "release "+id+" completed: updated 1")
	require.Regexp(t, `(?m)^█{30} 1/1 100%$`, screen)
	require.Regexp(t, `(?m)^`+name+`\s+prod\s+wave 1\s+updated\s+cut over in \d+ms$`, screen)
	t.Logf("the terminal during the cut-over (empty if it was over within a poll):\n%s\nand at the end:\n%s", during, screen)
	_, body, _ := p.do(http.MethodGet, "/v1/tenants/"+name, nil)
	require.Equal(t, image, body["image"], "the tenant runs the new image (it ran %s)", oldImage)

	// In a script: no terminal, so plain lines; exit codes say what
	// happened.
	script := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "HOME="+env["HOME"], "TENANTFLOW_DATA_DIR="+env["TENANTFLOW_DATA_DIR"],
			cli.EnvAPIURL+"="+p.api.URL, cli.EnvToken+"="+p.token)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
	}
	ghost := tenantName("ghost")
	code, out, errOut := script("tenants", "get", ghost)
	require.Equal(t, cli.ExitNotFound, code, errOut)
	require.Equal(t, "error: tenant "+ghost+" not found\n", errOut)
	require.Empty(t, out)

	code, out, errOut = script("releases", "watch", id)
	require.Equal(t, cli.ExitOK, code, errOut)
	require.NotContains(t, out, "\x1b", "no redrawing in a script")
	require.Equal(t, []string{
		"release " + id + ": completed · phase prod · wave 1 [1/1]",
	}, strings.Split(out, "\n")[:1])
	require.Regexp(t, `(?m)^`+name+`\s+prod\s+wave 1\s+updated\s+cut over in \d+ms$`, out)
	require.True(t, strings.HasSuffix(out, "tenants: updated 1\nrelease "+id+" completed: updated 1\n"), out)

	code, _, errOut = script("releases", "promote", id, "--reason", "again", "--token", "developer-"+p.token)
	require.Equal(t, cli.ExitRefused, code, errOut)
	require.Contains(t, errOut, "error: ")

	code, _, errOut = script("releases", "abort", id, "--reason", "as a developer")
	require.Equal(t, cli.ExitRefused, code, "ops may abort; an ended release refuses: %s", errOut)
	code, _, errOut = script("releases", "abort", id, "--reason", "as a developer", "--token", "developer-"+p.token)
	require.Equal(t, cli.ExitDenied, code, "a developer may not abort: %s", errOut)

	var rel struct { // the API's view: release.Release with the plan's durations as strings
		State     release.State
		Promotion release.Promotion
		Plan      struct{ Drain string }
	}
	code, out, _ = script("releases", "get", id, "-o", "json")
	require.Equal(t, cli.ExitOK, code)
	require.NoError(t, json.Unmarshal([]byte(out), &rel))
	require.Equal(t, release.StateCompleted, rel.State)
	require.Equal(t, "QA ok", rel.Promotion.Reason)
	require.Equal(t, "0s", rel.Plan.Drain)
}

// jsonLine is the line of screen that holds a JSON object.
func jsonLine(t *testing.T, screen string) string {
	t.Helper()
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, "{") {
			return l
		}
	}
	t.Fatalf("no JSON on the screen:\n%s", screen)
	return ""
}
