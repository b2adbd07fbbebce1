package release

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// A release's size grows with the fleet: about 400 bytes of detail per
// tenant. What Temporal stores as one payload (capped at 2 MB) carries
// none of it: the Update results and the workflow's result are the
// release's summary (Counts instead of Tenants), and the continue-as-new
// input carries the tenants packed (gzipped JSON, about a tenth of the
// size). The detail is read on demand: the release query, or a page of
// tenants (QueryTenants).

// summary is the release without its tenants, counted by status.
func (r *rollout) summary() Release { return Summary(r.state) }

// Summary is st without its tenants, counted by status (what the Update
// results and the workflow's result carry).
func Summary(st Release) Release {
	st.Counts = countByStatus(st.Tenants)
	st.Tenants = nil
	return st
}

func countByStatus(ts []Tenant) map[TenantStatus]int {
	out := make(map[TenantStatus]int, 8)
	for _, t := range ts {
		out[t.Status]++
	}
	return out
}

// packTenants is the tenants as the continue-as-new input carries them.
func packTenants(ts []Tenant) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if err := json.NewEncoder(zw).Encode(ts); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unpackTenants reverses packTenants.
func unpackTenants(b []byte) ([]Tenant, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("packed tenants: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("packed tenants: %w", err)
	}
	var ts []Tenant
	if err := json.Unmarshal(raw, &ts); err != nil {
		return nil, fmt.Errorf("packed tenants: %w", err)
	}
	return ts, nil
}

// MaxTenantsPage is the largest page of tenants QueryTenants answers.
const MaxTenantsPage = 500

// TenantsPage asks QueryTenants for a page: Limit tenants (1 to
// MaxTenantsPage; 0: 100) from Offset, in the release's order, only those
// with Status when it is set.
type TenantsPage struct {
	Offset int          `json:"offset,omitempty"`
	Limit  int          `json:"limit,omitempty"`
	Status TenantStatus `json:"status,omitempty"`
}

// TenantPage is a page of a release's tenants; Total counts those that
// match (all pages).
type TenantPage struct {
	Total   int      `json:"total"`
	Offset  int      `json:"offset"`
	Tenants []Tenant `json:"tenants"`
}

// page answers QueryTenants.
func (r *rollout) page(in TenantsPage) (TenantPage, error) {
	if in.Offset < 0 || in.Limit < 0 || in.Limit > MaxTenantsPage {
		return TenantPage{}, fmt.Errorf("offset must be at least 0 and limit 1 to %d", MaxTenantsPage)
	}
	if in.Limit == 0 {
		in.Limit = 100
	}
	match := r.state.Tenants
	if in.Status != "" {
		match = slices.DeleteFunc(slices.Clone(match), func(t Tenant) bool { return t.Status != in.Status })
	}
	out := TenantPage{Total: len(match), Offset: in.Offset, Tenants: []Tenant{}}
	if in.Offset < len(match) {
		out.Tenants = slices.Clone(match[in.Offset:min(len(match), in.Offset+in.Limit)])
	}
	return out, nil
}
