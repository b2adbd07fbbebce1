package api

import (
	"sync"
	"time"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// DefaultStateCacheSize is Config.StateCacheSize's default: a fleet of
// ten thousand tenants, a few KB each.
const DefaultStateCacheSize = 10000

// stateCache remembers each tenant's last state answer with the point of
// its workflow's history it was asked at: the run and its history length.
// A workflow's state changes only in workflow tasks, and every task adds
// events, so while a describe shows the same run and length the answer
// is still the workflow's own, and GET /v1/tenants/{name} needs no worker.
// Queries cost a worker's poller and the server a round trip through
// matching: at 200 reads a second they starved the workflows they read
// (the scale benchmark), while a describe is the server's own read.
type stateCache struct {
	mu  sync.Mutex
	max int
	m   map[string]cachedState
}

type cachedState struct {
	runID  string
	length int64
	state  tenant.Tenant
	at     time.Time // when the workflow answered
}

func newStateCache(size int) *stateCache {
	return &stateCache{max: size, m: make(map[string]cachedState)}
}

// get is the state answered for name at runID's history length, if any.
func (c *stateCache) get(name, runID string, length int64) (tenant.Tenant, bool) {
	if runID == "" || length <= 0 {
		return tenant.Tenant{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || e.runID != runID || e.length != length {
		return tenant.Tenant{}, false
	}
	return e.state, true
}

// put remembers st as name's state at runID's history length (described
// before st was asked: st is at least that recent). A full cache drops an
// arbitrary entry first.
func (c *stateCache) put(name, runID string, length int64, st tenant.Tenant) {
	if runID == "" || length <= 0 || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[name]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[name] = cachedState{runID: runID, length: length, state: st, at: time.Now()}
}

// last is the last state answered for name, whatever its history point,
// and when: the answer to give, marked stale, when the server does not
// describe the workflow in time.
func (c *stateCache) last(name string) (tenant.Tenant, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	return e.state, e.at, ok
}
