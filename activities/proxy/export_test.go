package proxy

// Host exposes the host derivation to the external tests.
func Host(a *Activities, tenant string) string { return a.host(tenant) }
