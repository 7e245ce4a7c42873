package loadbench

import (
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStatCPU(t *testing.T) {
	// utime=250 stime=50 ticks -> 3 s; the name holds ") " to trip naive parsers.
	stat := "1234 (nginx: a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10"
	got, err := parseStatCPU(stat)
	require.NoError(t, err)
	assert.InDelta(t, 3.0, got, 1e-9)

	_, err = parseStatCPU("garbage")
	assert.Error(t, err)
	_, err = parseStatCPU("1 (x) S 1 2")
	assert.Error(t, err)
}

func TestParseStatus(t *testing.T) {
	rss, hwm := parseStatus("Name:\tcaddy\nVmHWM:\t   2048 kB\nVmRSS:\t   1024 kB\n")
	assert.Equal(t, int64(1024*1024), rss)
	assert.Equal(t, int64(2048*1024), hwm)
}

func TestReadProcUsageSeesChildCPU(t *testing.T) {
	// A shell that burns CPU in a child for a moment.
	cmd := exec.Command("sh", "-c", "sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5' & wait")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var u ProcUsage
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var err error
		u, err = ReadProcUsage(cmd.Process.Pid)
		require.NoError(t, err)
		if u.CPUSecs > 0.05 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	assert.Greater(t, u.CPUSecs, 0.05, "the busy child's CPU is counted")
	assert.Greater(t, u.RSS, int64(0))
	assert.GreaterOrEqual(t, u.HWM, u.RSS)

	_, err := ReadProcUsage(1 << 30)
	assert.Error(t, err)
}
