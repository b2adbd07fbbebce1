// Package registryauth tells a registry's refusal of credentials in what
// the Docker Engine answers, for the pulls of the runtime driver and the
// pushes of the image builder alike.
package registryauth

import (
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// Refused tells a registry's refusal of the credentials (or of the user's
// rights on the repository), in the engine's typed error or in the text of
// a pull or push stream.
func Refused(cause error, msg string) bool {
	lower := strings.ToLower(msg)
	return cerrdefs.IsUnauthorized(cause) || cerrdefs.IsPermissionDenied(cause) ||
		strings.Contains(lower, "unauthorized") ||
		strings.Contains(lower, "authentication required") ||
		strings.Contains(lower, "no basic auth credentials") ||
		strings.Contains(lower, "access to the resource is denied")
}
