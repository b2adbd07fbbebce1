package hosts

import (
	"math"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Reservations of a service without limits in its template: it still
// takes room on its host.
const (
	DefaultServiceMilliCPU = 100
	DefaultServiceMemory   = 64 << 20
)

// Need is what a tenant whose services have these limits reserves on its
// host: the template's limits, a default for a service without.
func Need(limits ...spec.Resources) Resources {
	var r Resources
	for _, l := range limits {
		cpu := int64(math.Ceil(l.CPUs * 1000))
		if cpu <= 0 {
			cpu = DefaultServiceMilliCPU
		}
		mem := l.MemoryBytes()
		if mem <= 0 {
			mem = DefaultServiceMemory
		}
		r = r.Add(Resources{MilliCPU: cpu, MemoryBytes: mem})
	}
	return r
}
