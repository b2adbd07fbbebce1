package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/api"
)

// startServer serves h within limits on a loopback port until the test
// ends, and returns its address.
func startServer(t *testing.T, h http.Handler, limits httpLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, h, limits, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return ln.Addr().String()
}

// readsBody answers once it has read the whole body, as the API's
// handlers do.
var readsBody = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
})

// waitClosed reads conn until the server closes it, and fails the test if
// it is still open after guard.
func waitClosed(t *testing.T, conn net.Conn, r io.Reader, guard time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(start.Add(guard)))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still holds the connection open after %s", guard)
	}
	return time.Since(start)
}

func dialServer(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestServerCutsOffATrickledBody(t *testing.T) {
	limits := httpLimits{ReadHeader: time.Second, Read: 500 * time.Millisecond, Write: 5 * time.Second, Idle: 5 * time.Second, MaxHeaderBytes: 8 << 10}
	conn := dialServer(t, startServer(t, readsBody, limits))
	// 100 MB announced, 10 bytes sent, then nothing.
	_, err := fmt.Fprintf(conn, "POST /v1/tenants HTTP/1.1\r\nHost: api\r\nContent-Length: 100000000\r\n\r\n0123456789")
	require.NoError(t, err)
	took := waitClosed(t, conn, conn, 10*limits.Read)
	assert.Less(t, took, limits.Read+time.Second, "closed within the read timeout")
}

func TestServerClosesIdleKeepAliveConnections(t *testing.T) {
	limits := httpLimits{ReadHeader: 5 * time.Second, Read: 10 * time.Second, Write: 10 * time.Second, Idle: 300 * time.Millisecond, MaxHeaderBytes: 8 << 10}
	conn := dialServer(t, startServer(t, readsBody, limits))
	_, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.False(t, resp.Close, "the connection is kept alive for the next request")

	took := waitClosed(t, conn, br, 3*time.Second)
	assert.Less(t, took, limits.Idle+time.Second, "closed after the idle timeout, not the read timeout")
}

func TestServerRefusesHugeHeaders(t *testing.T) {
	limits := httpLimits{ReadHeader: time.Second, Read: time.Second, Write: time.Second, Idle: time.Second, MaxHeaderBytes: 8 << 10}
	conn := dialServer(t, startServer(t, readsBody, limits))
	_, err := fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: api\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// The defaults must let every answer the API computes reach the client.
func TestDefaultHTTPLimitsOutlastTheAPI(t *testing.T) {
	l := defaultHTTPLimits
	const workflowStart = 10 * time.Second // the SDK's RPC timeout
	assert.Greater(t, l.Write, l.Read+2*api.DefaultQueryTimeout, "a query, then an Update")
	assert.Greater(t, l.Write, l.Read+api.ResolveTimeout+workflowStart)
	assert.Greater(t, l.Idle, 60*time.Second, "longer than load balancers keep idle connections")
	assert.Positive(t, l.ReadHeader)
	assert.Positive(t, l.MaxHeaderBytes)
}
