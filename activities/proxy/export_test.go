package proxy

// Host exposes the host derivation to the external tests.
func (a *Activities) Host(tenant string) string { return a.host(tenant) }
