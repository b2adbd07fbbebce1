package docker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// maxLogLine bounds one line: a longer one is cut (the engine splits
// lines over 16 KiB itself).
const maxLogLine = 64 << 10

// Logs reads the logs of the tenant's containers (of the service asked,
// or all), each line with its service, generation and stream. Without
// Follow the lines come in time order; with it, the backlog of each
// container, then each line as it is written, until ctx ends. The
// containers are those of the request's moment: a cut-over's new
// instance shows in the next request.
func (d *Driver) Logs(ctx context.Context, in runtimes.LogsInput, emit func(runtimes.LogLine) error) error {
	f := ownedFilter(in.Tenant, in.Owner)
	f.Add("label", LabelManaged+"=true")
	if in.Service != "" {
		f.Add("label", LabelService+"="+in.Service)
	}
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers of %s: %w", in.Tenant, err)
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: in.Follow, Tail: "all"}
	if in.Tail > 0 {
		opts.Tail = strconv.Itoa(in.Tail)
	}
	if !in.Since.IsZero() {
		opts.Since = in.Since.UTC().Format(time.RFC3339Nano)
	}
	var sources []runtimes.LogSource
	for _, c := range list {
		svc := c.Labels[LabelService]
		if svc == "" {
			continue // a scratch instance (a backup's check): not the tenant's service
		}
		gen, _ := generationOf(c.Labels)
		sources = append(sources, func(ctx context.Context, out func(runtimes.LogLine) error) error {
			rc, err := d.cli.ContainerLogs(ctx, c.ID, opts)
			if err != nil {
				return fmt.Errorf("logs of %s: %w", strings.TrimPrefix(firstName(c.Names), "/"), err)
			}
			defer rc.Close()
			stdout, stderr := lineWriter(svc, gen, "stdout", out), lineWriter(svc, gen, "stderr", out)
			_, err = stdcopy.StdCopy(stdout, stderr, rc)
			stdout.Close()
			stderr.Close()
			if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
				return err
			}
			return nil
		})
	}
	return runtimes.MergeLogs(ctx, in, sources, emit)
}

// lineWriter splits a container's stream into lines, each
// "<RFC 3339 time> <text>" as the engine timestamps it.
func lineWriter(svc string, gen int, stream string, out func(runtimes.LogLine) error) io.WriteCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 4096), maxLogLine)
		for sc.Scan() {
			ts, text, _ := strings.Cut(sc.Text(), " ")
			at, err := time.Parse(time.RFC3339Nano, ts)
			if err != nil {
				text = sc.Text()
			}
			if err := out(runtimes.LogLine{Time: at, Service: svc, Generation: gen, Stream: stream, Line: text}); err != nil {
				pr.CloseWithError(err)
				return
			}
		}
		if err := sc.Err(); err != nil {
			pr.CloseWithError(err)
		}
	}()
	return &pipeCloser{PipeWriter: pw, done: done}
}

type pipeCloser struct {
	*io.PipeWriter
	done chan struct{}
}

// Close ends the stream and waits until its last line went out.
func (p *pipeCloser) Close() error {
	err := p.PipeWriter.Close()
	<-p.done
	return err
}

// Engines hands out one Driver per engine endpoint, made on first use and
// kept: the API reads logs on the shared engine ("", Shared) and on each
// fleet host's (its registered endpoint).
type Engines struct {
	Shared string // the endpoint "" stands for (empty: DOCKER_HOST or the default socket)
	Log    *slog.Logger
	mu     sync.Mutex
	byHost map[string]*Driver
}

// Use makes d the driver of endpoint (the worker's own, in one process).
func (e *Engines) Use(endpoint string, d *Driver) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keep(endpoint, d)
}

// keep records endpoint's driver; e.mu is held.
func (e *Engines) keep(endpoint string, d *Driver) {
	if e.byHost == nil {
		e.byHost = map[string]*Driver{}
	}
	e.byHost[endpoint] = d
}

// LogReader is the log reader of endpoint's engine.
func (e *Engines) LogReader(ctx context.Context, endpoint string) (runtimes.LogReader, error) {
	if endpoint == "" {
		endpoint = e.Shared
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, ok := e.byHost[endpoint]; ok {
		return d, nil
	}
	d, err := New(ctx, Config{Host: endpoint}, e.Log)
	if err != nil {
		return nil, err
	}
	e.keep(endpoint, d)
	return d, nil
}
