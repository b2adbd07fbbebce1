package harness

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"
)

// LocalhostClient is an HTTP client that sends <name>.localhost to
// 127.0.0.1, as browsers and curl do (RFC 6761): Go's resolver asks DNS,
// which knows no such name. Its transport is its own, so no connection
// outlives the caller's CloseIdleConnections.
func LocalhostClient(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
	}}
}
