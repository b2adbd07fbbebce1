package runtimes

import (
	"context"
	"time"
)

// LogReader reads a tenant's container logs (Docker; the OpenShift
// driver has none yet). Only the tenant's own containers, of the
// provisioning Owner, are read: never another tenant's.
type LogReader interface {
	Logs(ctx context.Context, in LogsInput, emit func(LogLine) error) error
}

// LogsInput selects log lines: of one service or all, since a time, the
// last Tail lines (per container; 0: all), and with Follow the lines
// that come after, until ctx ends.
type LogsInput struct {
	Tenant  string
	Owner   string
	Service string
	Since   time.Time
	Tail    int
	Follow  bool
}

// LogLine is one line a tenant's container wrote.
type LogLine struct {
	Time       time.Time `json:"time"`
	Service    string    `json:"service"`
	Generation int       `json:"generation"`
	Stream     string    `json:"stream"` // stdout or stderr
	Line       string    `json:"line"`
}
