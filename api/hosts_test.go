package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A bad host registration is a 400 naming the field, and nothing reaches
// Temporal; only ops register hosts.
func TestRegisterHostValidation(t *testing.T) {
	good := `"docker":"unix:///run/b/docker.sock","address":"10.0.0.2","capacity":{"cpus":8,"memory":"16Gi"}`
	tests := []struct{ name, body, field string }{
		{"no name", `{` + good + `}`, "name"},
		{"bad name", `{"name":"Host_B",` + good + `}`, "name"},
		{"no capacity", `{"name":"b","docker":"unix:///d.sock","address":"10.0.0.2"}`, "capacity"},
		{"bad memory", `{"name":"b","docker":"unix:///d.sock","address":"10.0.0.2","capacity":{"cpus":8,"memory":"16GB"}}`, "capacity.memory"},
		{"no cpus", `{"name":"b","docker":"unix:///d.sock","address":"10.0.0.2","capacity":{"cpus":0,"memory":"16Gi"}}`, "capacity.cpus"},
		{"tiny memory", `{"name":"b","docker":"unix:///d.sock","address":"10.0.0.2","capacity":{"cpus":1,"memory":"32Mi"}}`, "capacity.memory"},
		{"bad docker", `{"name":"b","docker":"/var/run/docker.sock","address":"10.0.0.2","capacity":{"cpus":1,"memory":"1Gi"}}`, "docker"},
		{"bad address", `{"name":"b","docker":"tcp://10.0.0.2:2375","address":"10.0.0.2:80","capacity":{"cpus":1,"memory":"1Gi"}}`, "address"},
		{"bad label", `{"name":"b",` + good + `,"labels":{"Zone!":"a"}}`, "labels"},
		{"unknown field", `{"name":"b",` + good + `,"zone":"a"}`, "zone"},
		{"null", `{"name":"b",` + good + `,"labels":null}`, "labels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/v1/hosts", opsToken, tt.body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			field, _ := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, tt.field, field)
			assert.Empty(t, e.temporal.startCalls(), "nothing starts")
			assert.Empty(t, e.temporal.updates, "nothing is sent")
		})
	}
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/hosts", developerToken, `{"name":"b",`+good+`}`)
	assert.Equal(t, http.StatusForbidden, rec.Code)
	rec = e.do(http.MethodGet, "/v1/hosts", developerToken, "")
	assert.Equal(t, http.StatusForbidden, rec.Code)
}
