package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// BenchmarkAuditAppend is what recording one change adds to its request,
// for each store (make bench): the file store syncs every entry to disk;
// the test PostgreSQL runs with fsync off, so its figure is the round
// trip and the insert, not a durable commit. BenchmarkAuditList pages 100
// entries of a tenant out of 10,000.
func BenchmarkAuditAppend(b *testing.B) {
	for name, open := range stores(b) {
		b.Run(name, func(b *testing.B) {
			s := open()
			ctx := context.Background()
			e := Entry{Role: "ops", Actor: "alice", Action: "tenant.suspend", Tenant: "acme", Reason: "invoice 42 unpaid", Outcome: OutcomeAccepted, Status: 202}
			b.ResetTimer()
			for b.Loop() {
				if err := s.Append(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAuditList(b *testing.B) {
	for name, open := range stores(b) {
		b.Run(name, func(b *testing.B) {
			s := open()
			ctx := context.Background()
			for i := range 10000 {
				e := Entry{Role: "ops", Actor: "alice", Action: "tenant.suspend", Tenant: fmt.Sprintf("t%03d", i%100), Outcome: OutcomeAccepted, Status: 202}
				if err := s.Append(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				got, _, err := s.List(ctx, Query{Tenant: "t042", Limit: 100})
				if err != nil || len(got) != 100 {
					b.Fatalf("%d entries, %v", len(got), err)
				}
			}
		})
	}
}

// stores opens each store afresh for a sub-benchmark.
func stores(b *testing.B) map[string]func() Store {
	return map[string]func() Store{
		"file": func() Store {
			s, err := OpenFileStore(filepath.Join(b.TempDir(), "audit"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func() Store {
			pg := harness.StartPostgres(b)
			pg.SQL("postgres", "CREATE DATABASE audit OWNER "+pg.Role)
			s, err := OpenPostgres(context.Background(), fmt.Sprintf("postgres://%s:%s@%s/audit", pg.Role, pg.Password, pg.Addr))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		},
	}
}
