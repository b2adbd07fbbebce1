// Package devserver knows how Tenantflow runs `temporal server start-dev`:
// the search attributes its workflows need and the dynamic config that keeps
// orchestration overhead low. `tenantflow dev` and the test harness share it
// so tests run against the server configuration developers use.
package devserver

import (
	"github.com/tenantflow/tenantflow/workflows/searchattr"
)

// DynamicConfig lets the server hand an activity task straight back to the
// worker that scheduled it, and the first workflow task to the client that
// started the workflow when it hosts a worker: each saves a poll round trip.
var DynamicConfig = []string{
	"system.enableActivityEagerExecution=true",
	"system.enableEagerWorkflowStart=true",
}

// Args are the start-dev arguments beyond address, namespace and database.
func Args() []string {
	var args []string
	for _, k := range searchattr.Keys {
		args = append(args, "--search-attribute", k.GetName()+"=Keyword")
	}
	for _, kv := range DynamicConfig {
		args = append(args, "--dynamic-config-value", kv)
	}
	return args
}
