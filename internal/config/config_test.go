package config

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSecretIsNeverPrinted(t *testing.T) {
	t.Setenv("TENANTFLOW_TEST_SECRET", "hunter2-very-secret")
	s := New("test")
	var secret string
	s.Secret(&secret, "secret", "TENANTFLOW_TEST_SECRET", "a secret")
	var help bytes.Buffer
	s.FS.SetOutput(&help)
	s.FS.PrintDefaults()
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if secret != "hunter2-very-secret" {
		t.Fatalf("secret from env not read: %q", secret)
	}
	if strings.Contains(help.String(), "hunter2") {
		t.Fatalf("-h shows the secret:\n%s", help.String())
	}
	if !strings.Contains(help.String(), "TENANTFLOW_TEST_SECRET") {
		t.Fatalf("-h does not name the variable:\n%s", help.String())
	}
}

func TestBadEnvValuesNameTheVariable(t *testing.T) {
	t.Setenv("TENANTFLOW_TEST_TIMEOUT", "soon")
	t.Setenv("TENANTFLOW_TEST_FLAG", "maybe")
	t.Setenv("TENANTFLOW_TEST_COUNT", "many")
	s := New("test")
	var d time.Duration
	var b bool
	var n int
	s.Duration(&d, "timeout", "TENANTFLOW_TEST_TIMEOUT", time.Second, "")
	s.Bool(&b, "flag", "TENANTFLOW_TEST_FLAG", false, "")
	s.Int(&n, "count", "TENANTFLOW_TEST_COUNT", 1, "")
	err := s.Parse(nil)
	for _, v := range []string{"TENANTFLOW_TEST_TIMEOUT", "TENANTFLOW_TEST_FLAG", "TENANTFLOW_TEST_COUNT"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Fatalf("want %s named, got %v", v, err)
		}
	}
}
