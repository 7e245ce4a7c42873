package loadbench

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBackendServesObjectsPutsAndHealth(t *testing.T) {
	b, err := StartBackend(3, "127.0.0.1:0")
	require.NoError(t, err)
	defer b.Close()
	c := &http.Client{Timeout: 5 * time.Second}

	resp, err := c.Get("http://" + b.Addr + "/obj/1500000")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Len(t, body, 1500000)
	assert.Equal(t, "3", resp.Header.Get("X-Backend"))

	req, _ := http.NewRequest(http.MethodPut, "http://"+b.Addr+"/obj/x", strings.NewReader(strings.Repeat("z", 4096)))
	resp, err = c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "4096", resp.Header.Get("X-Received"))

	resp, err = c.Get("http://" + b.Addr + HealthPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, int64(2), b.Served())
	assert.Equal(t, int64(1), b.Probes())
}

func TestBackendKillResetsAndRestartServesAgain(t *testing.T) {
	b, err := StartBackend(1, "127.0.0.1:0")
	require.NoError(t, err)
	defer b.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Timeout: 2 * time.Second, Transport: tr}
	get := func(path string) error {
		resp, err := c.Get("http://" + b.Addr + path)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil
	}
	require.NoError(t, get("/obj/10")) // leaves a keep-alive connection

	require.NoError(t, b.Kill())
	assert.Error(t, b.Kill(), "a second kill is refused")
	assert.Error(t, get("/obj/10"), "the kept-alive connection was reset")
	assert.Error(t, get("/obj/10"), "a new connection is reset too")
	assert.Error(t, get(HealthPath))
	hits, last, _ := b.killStats()
	assert.Equal(t, int64(2), hits, "probes are not counted as traffic")
	assert.WithinDuration(t, time.Now(), last, 2*time.Second)

	require.NoError(t, b.Restart())
	require.NoError(t, get("/obj/10"))
	_, _, first := b.killStats()
	assert.WithinDuration(t, time.Now(), first, 2*time.Second)
}
