package temporaltest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

func TestServerPIDsNameTheServersProcesses(t *testing.T) {
	tmp := StartTemporal(t)
	pids, err := tmp.ServerPIDs()
	require.NoError(t, err)
	require.NotEmpty(t, pids)
	for name, pid := range pids {
		_, err := harness.ProcCPU(pid)
		require.NoError(t, err, name)
		rss, _, err := harness.ProcMemory(pid)
		require.NoError(t, err, name)
		assert.Positive(t, rss, name)
	}
}
