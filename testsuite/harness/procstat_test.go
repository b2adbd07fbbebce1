package harness

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestProcCPUCountsALiveChild(t *testing.T) {
	// A shell that starts a busy child: the shell itself uses nearly no
	// CPU, so the time measured is the child's.
	cmd := exec.Command("sh", "-c", "sh -c 'while :; do :; done' & wait")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = exec.Command("pkill", "-P", strconv.Itoa(cmd.Process.Pid)).Run()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	time.Sleep(700 * time.Millisecond)
	used, err := ProcCPU(cmd.Process.Pid)
	require.NoError(t, err)
	assert.Greater(t, used, 200*time.Millisecond, "the busy child's CPU counts")

	_, err = ProcCPU(1 << 30)
	assert.Error(t, err)
}

func TestProcMemoryAndFindProcess(t *testing.T) {
	rss, peak, err := ProcMemory(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, rss)
	assert.GreaterOrEqual(t, peak, rss)

	cmd := exec.Command("sleep", "30.123456")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid, err := FindProcess("sleep", "30.123456")
	require.NoError(t, err)
	assert.Equal(t, cmd.Process.Pid, pid)
	_, err = FindProcess("no-such-process-0f3a")
	assert.Error(t, err)
}
