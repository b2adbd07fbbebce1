// Package searchattr names the search attributes the workflows keep
// current, so ops can filter in the Web UI (TenantState="failed",
// Stage="prod", …) and the fleet activities can list tenants. They must be
// registered on the namespace (the dev server does it at start-up; see
// docs/operations.md for a real cluster).
package searchattr

import "go.temporal.io/sdk/temporal"

// The Keyword search attributes.
var (
	TenantID    = temporal.NewSearchAttributeKeyKeyword("TenantId")
	TenantState = temporal.NewSearchAttributeKeyKeyword("TenantState")
	Stage       = temporal.NewSearchAttributeKeyKeyword("Stage")
	Release     = temporal.NewSearchAttributeKeyKeyword("Release")
	Image       = temporal.NewSearchAttributeKeyKeyword("Image")
)

// Keys lists every search attribute the workflows use, for registration
// and start-up checks.
var Keys = []temporal.SearchAttributeKey{TenantID, TenantState, Stage, Release, Image}
