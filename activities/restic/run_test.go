package restic

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The off-site password reaches restic only through its environment, and
// nothing restic says brings it back into an error: not as it is, not
// escaped as in a URL. The worker's own environment, which holds it in
// clear, is not restic's.
func TestOffsitePasswordStaysInTheChildsEnvironment(t *testing.T) {
	dir := t.TempDir()
	password := "p@ss/w%rd+ " + "x"
	t.Setenv(EnvOffsitePassword, password)
	// A restic that repeats its arguments, its repository and its
	// environment to its standard error, and keeps a copy of both.
	fake := filepath.Join(dir, "restic")
	script := "#!/bin/sh\necho \"args: $*\" >&2\necho \"repository: $RESTIC_REPOSITORY\" >&2\necho \"$*\" > " + dir + "/argv\nenv > " + dir + "/env\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	a := &Activities{Config: Config{Repos: dir, Keys: dir, Binary: fake,
		OffsiteURL: "http://backup.example:8000/", OffsiteUser: "worker1", OffsitePassword: password}}
	key := []byte(strings.Repeat("ab", 32))
	if err := os.WriteFile(filepath.Join(dir, "acme.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	remote, err := a.offsite("acme")
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.run(context.Background(), command{repo: remote, from: &repository{location: dir, name: dir, key: "k"}, args: []string{"copy", "abc"}})
	if err == nil {
		t.Fatal("the failing restic did not fail")
	}
	msg := err.Error()
	if !strings.Contains(msg, "repository: rest:http://worker1:***@backup.example:8000/worker1/"+OffsiteName("acme", key)+"/") {
		t.Fatalf("the error does not show restic's output, scrubbed: %s", msg)
	}
	for _, secret := range []string{password, url.QueryEscape(password), url.PathEscape(password), strings.TrimPrefix(url.UserPassword("x", password).String(), "x:")} {
		if strings.Contains(msg, secret) {
			t.Errorf("the error holds the password as %q: %s", secret, msg)
		}
	}
	argv, err := os.ReadFile(filepath.Join(dir, "argv"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(argv), "worker1") || strings.Contains(string(argv), "p@ss") {
		t.Errorf("restic's arguments name the off-site repository: %s", argv)
	}
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), EnvOffsitePassword) || !strings.Contains(string(env), "RESTIC_FROM_REPOSITORY="+dir) {
		t.Errorf("restic's environment is not its own:\n%s", env)
	}
}
