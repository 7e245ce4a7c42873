package miniotransport

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func parse(t *testing.T, input string) (*Transport, error) {
	t.Helper()
	tr := new(Transport)
	err := tr.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
	return tr, err
}

// TestCaddyfile: our options and every option of `transport http` in one
// block; the http options land in the embedded transport exactly as
// `transport http` would parse them.
func TestCaddyfile(t *testing.T) {
	tr, err := parse(t, `minio {
		keepalive 2m
		keepalive_idle_conns_per_host 32
		try_timeout 2s
		response_header_timeout 60s
		expect_continue_timeout 1s
		hedge adaptive
		hedge_quantile 0.9
		hedge_min 20ms
		hedge_budget 5%
		slow_factor 3
		replay_body 1MiB
		domains s3.example.com .s3.example.org
		dial_timeout 3s
		local_address 127.0.0.1
	}`)
	require.NoError(t, err)
	assert.Equal(t, caddy.Duration(2*time.Second), tr.TryTimeout)
	assert.Equal(t, caddy.Duration(time.Minute), tr.ResponseHeaderTimeout, "an http option, not ours")
	assert.Equal(t, "adaptive", tr.Hedge)
	assert.Equal(t, 0.9, tr.HedgeQuantile)
	assert.Equal(t, caddy.Duration(20*time.Millisecond), tr.HedgeMin)
	assert.InDelta(t, 0.05, tr.HedgeBudget, 1e-9)
	assert.Equal(t, 3.0, tr.SlowFactor)
	assert.EqualValues(t, 1<<20, tr.ReplayBody)
	assert.Equal(t, []string{"s3.example.com", ".s3.example.org"}, tr.Domains)
	require.NotNil(t, tr.KeepAlive)
	assert.Equal(t, caddy.Duration(2*time.Minute), tr.KeepAlive.IdleConnTimeout)
	assert.Equal(t, 32, tr.KeepAlive.MaxIdleConnsPerHost)
	assert.Equal(t, caddy.Duration(time.Second), tr.ExpectContinueTimeout)
	assert.Equal(t, caddy.Duration(3*time.Second), tr.DialTimeout)
	assert.Equal(t, "127.0.0.1", tr.LocalAddress)

	// The JSON is Caddy's http transport's plus ours, side by side.
	raw, err := json.Marshal(tr)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	assert.Equal(t, "2s", fmtDuration(m["try_timeout"]))
	assert.Contains(t, m, "keep_alive")
	assert.Contains(t, m, "expect_continue_timeout")

	// "off", in any case, is stored as -1, the JSON spelling of off.
	for _, word := range []string{"off", "OFF", "Off"} {
		off, err := parse(t, "minio {\n slow_factor "+word+"\n replay_body "+word+"\n}")
		require.NoError(t, err, word)
		assert.Equal(t, -1.0, off.SlowFactor, word)
		assert.EqualValues(t, -1, off.ReplayBody, word)
	}
}

func fmtDuration(v any) string {
	f, _ := v.(float64)
	return time.Duration(int64(f)).String()
}

// TestCaddyfileErrors: every error names the option, the value and the
// file:line.
func TestCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ input, want string }{
		{"minio {\n try_timeout soon\n}", `try_timeout "soon": not a duration`},
		{"minio {\n try_timeout -1s\n}", "try_timeout -1s: must not be negative"},
		{"minio {\n hedge sometimes\n}", `hedge "sometimes": want off, adaptive or a positive duration`},
		{"minio {\n try_timeout 1s\n hedge 2s\n}", `hedge "2s": must be shorter than try_timeout 1s`},
		{"minio {\n hedge_budget lots\n}", `hedge_budget "lots": want a fraction`},
		{"minio {\n hedge_budget 150%\n}", "hedge_budget 1.5: must be a fraction in (0, 1]"},
		{"minio {\n hedge_quantile 0.2\n}", "hedge_quantile 0.2: must be in [0.5, 1)"},
		{"minio {\n slow_factor fast\n}", `slow_factor "fast": want a factor (4) or off`},
		{"minio {\n slow_factor 0.5\n}", "slow_factor 0.5: want a factor over 1, or -1 for off"},
		{"minio {\n replay_body lots\n}", `replay_body "lots": want a size (256KiB, 1MB) or off`},
		{"minio {\n replay_body 0\n}", `replay_body "0": want a size (256KiB, 1MB) or off`},
		{"minio {\n replay_body\n}", "replay_body: missing value"},
		{"minio {\n slow_factor off 4\n}", `slow_factor: want one value, got extra "4"`},
		{"minio {\n no_retry_unsent yes\n}", `no_retry_unsent: takes no value, got "yes"`},
		{"minio {\n domains\n}", "domains: at least one domain is required"},
		{"minio {\n keepalive forever\n}", "forever"},
		{"minio {\n bogus_option 1\n}", "bogus_option"},
		{"minio extra", "wrong argument count"},
	} {
		t.Run(tc.input, func(t *testing.T) {
			_, err := parse(t, tc.input)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "Testfile:", "names the file and line")
		})
	}
}

// TestDialInfoKeyMatchesCaddy: a hedged twin hands its node to Caddy's HTTP
// transport under the key Caddy itself uses.
func TestDialInfoKeyMatchesCaddy(t *testing.T) {
	want := reverseproxy.DialInfo{Network: "tcp", Address: "127.0.0.1:9102", Host: "127.0.0.1", Port: "9102"}
	got, ok := reverseproxy.GetDialInfo(context.WithValue(context.Background(), dialInfoKey, want))
	require.True(t, ok, "Caddy no longer reads the dial info under %q", dialInfoKey)
	assert.Equal(t, want, got)
}
