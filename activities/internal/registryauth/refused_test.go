package registryauth

import (
	"errors"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

func TestRefused(t *testing.T) {
	for _, c := range []struct {
		cause error
		msg   string
		want  bool
	}{
		{cerrdefs.ErrUnauthenticated, "", true},
		{cerrdefs.ErrNotFound, "", false},
		{cerrdefs.ErrPermissionDenied, "", true},
		{nil, "Head https://r/v2/x/manifests/v1: UNAUTHORIZED: authentication required", true},
		{nil, "no basic auth credentials", true},
		{nil, "denied: access to the resource is denied", true},
		{errors.New("dial tcp: connection refused"), "dial tcp: connection refused", false},
		{nil, "manifest unknown", false},
	} {
		if got := Refused(c.cause, c.msg); got != c.want {
			t.Errorf("Refused(%v, %q) = %v, want %v", c.cause, c.msg, got, c.want)
		}
	}
}
