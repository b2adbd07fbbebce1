package supervision

import "context"

// Check proves the monitoring system is reachable with this configuration.
//
// Deprecated: use the Driver's Check (NewDriver). As a method of
// Activities it is registered as an activity when the struct is
// registered whole; it stays only until the worker's wiring calls the
// Driver. Delete this file then.
func (a *Activities) Check(ctx context.Context) error { return a.driver.Check(ctx) }
