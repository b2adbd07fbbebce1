package proxy

import "context"

// Check asks Caddy for a sign of life.
//
// Deprecated: use Client.Check. As a method of Activities it is
// registered as an activity when the struct is registered whole; it stays
// only until the worker's wiring calls the Client. Delete this file then.
func (a *Activities) Check(ctx context.Context) error { return (&Client{a.conn}).Check(ctx) }
