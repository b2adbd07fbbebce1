package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Load sends requests continuously to hosts behind one proxy address, as
// users of the tenants would, and records every answer: a release test
// asserts that none failed. Half the workers keep connections alive (as
// browsers do), half open one per request, which is where a proxy reload
// could drop a connection.
type Load struct {
	stop    atomic.Bool
	wg      sync.WaitGroup
	resets  atomic.Int64
	mu      sync.Mutex
	answers map[string]map[string]int // host → body → count
	fails   []string
	total   int
}

// LoadReport is what a Load saw.
type LoadReport struct {
	Requests int
	// Failures lists every request that got no answer or a wrong one (not
	// 200, or a body accepted is false for).
	Failures []string
	// Answers counts the bodies each host answered.
	Answers map[string]map[string]int
	// DialResets counts TCP handshakes reset before a request was written
	// (the kernel's answer to a SYN hitting a proxy listener as it
	// closes); the dial was made again, as browsers do, and nothing was
	// sent twice.
	DialResets int64
}

// StartLoad starts workersPerHost workers per host, each sending GET
// <path> to addr (host:port) with that Host header, then waiting pause,
// until Stop. accept tells a correct body from a wrong one.
func StartLoad(addr string, hosts []string, path string, workersPerHost int, pause time.Duration, accept func(host, body string) bool) *Load {
	l := &Load{answers: map[string]map[string]int{}}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		for attempt := 0; ; attempt++ {
			c, err := dialer.DialContext(ctx, network, a)
			if err == nil || attempt == 2 || !errors.Is(err, syscall.ECONNRESET) {
				return c, err
			}
			l.resets.Add(1)
		}
	}
	keepAlive := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 64}}
	fresh := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	for _, host := range hosts {
		l.answers[host] = map[string]int{}
		for w := range workersPerHost {
			c := keepAlive
			if w%2 == 1 {
				c = fresh
			}
			l.wg.Go(func() {
				for !l.stop.Load() {
					body, err := get(c, addr, host, path)
					l.mu.Lock()
					l.total++
					switch {
					case err != nil:
						l.fails = append(l.fails, fmt.Sprintf("%s: %v", host, err))
					case !accept(host, body):
						l.fails = append(l.fails, fmt.Sprintf("%s: unexpected answer %q", host, body))
					default:
						l.answers[host][body]++
					}
					l.mu.Unlock()
					time.Sleep(pause)
				}
			})
		}
	}
	return l
}

func get(c *http.Client, addr, host, path string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// Stop ends the load and reports.
func (l *Load) Stop() LoadReport {
	l.stop.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return LoadReport{Requests: l.total, Failures: append([]string(nil), l.fails...), Answers: l.answers, DialResets: l.resets.Load()}
}

// Snapshot is the report so far, without stopping.
func (l *Load) Snapshot() LoadReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	answers := map[string]map[string]int{}
	for h, m := range l.answers {
		answers[h] = map[string]int{}
		for k, v := range m {
			answers[h][k] = v
		}
	}
	return LoadReport{Requests: l.total, Failures: append([]string(nil), l.fails...), Answers: answers, DialResets: l.resets.Load()}
}
