package healthready

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    *HealthReady
		wantErr string
	}{
		{
			name: "every option",
			input: `healthready 127.0.0.1:9101 127.0.0.1:9102 {
				to 127.0.0.1:9103
				to 127.0.0.1:9104
				path /minio/health/live
				method head
				probe_to 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3 127.0.0.1:4
				scheme https
				tls_insecure_skip_verify
				tls_server_name minio.local
				host minio
				header X-A 1
				header X-A 2
				interval 2s
				timeout 500ms
				rise 4
				fall 5
				concurrency 3
				expect_status 204
				cluster read
				passive_fails 2
				passive_window 1m
				min_ready 2
				name s3
			}`,
			want: &HealthReady{
				Upstreams: []string{"127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103", "127.0.0.1:9104"},
				Path:      "/minio/health/live", Method: "HEAD",
				ProbeTo: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"},
				Scheme:  "https", TLSInsecureSkipVerify: true, TLSServerName: "minio.local",
				Host: "minio", Headers: http.Header{"X-A": {"1", "2"}},
				Interval: caddy.Duration(2 * time.Second), Timeout: caddy.Duration(500 * time.Millisecond),
				Rise: 4, Fall: 5, Concurrency: 3, ExpectStatus: 204, Cluster: "read",
				PassiveFails: 2, PassiveWindow: caddy.Duration(time.Minute), MinReady: intp(2), Name: "s3",
			},
		},
		{
			name:  "console site: port, cluster off",
			input: "healthready 10.0.0.1:9001 {\n port 9000\n cluster off\n passive_fails -1\n}",
			want:  &HealthReady{Upstreams: []string{"10.0.0.1:9001"}, Port: 9000, PassiveFails: -1},
		},
		{
			name:  "min_ready 0 never fails open",
			input: "healthready a:1 {\n min_ready 0\n}",
			want:  &HealthReady{Upstreams: []string{"a:1"}, MinReady: intp(0)},
		},
		{
			name:  "hold, hold_max, busy_window",
			input: "healthready a:1 {\n hold 20s\n hold_max 50\n busy_window 2s\n}",
			want:  &HealthReady{Upstreams: []string{"a:1"}, Hold: durp(20 * time.Second), HoldMax: 50, BusyWindow: caddy.Duration(2 * time.Second)},
		},
		{
			name:  "hold off",
			input: "healthready a:1 {\n hold off\n}",
			want:  &HealthReady{Upstreams: []string{"a:1"}, Hold: durp(0)},
		},
		{name: "bad hold", input: "healthready a:1 {\n hold later\n}", wantErr: `hold "later": not a duration (or off)`},
		{name: "negative hold", input: "healthready a:1 {\n hold -1s\n}", wantErr: `hold "-1s": must not be negative (0 or off turns holding off), at Testfile:2`},
		{name: "hold_max 0", input: "healthready a:1 {\n hold_max 0\n}", wantErr: `hold_max "0": must be at least 1, at Testfile:2`},
		{name: "busy_window 0", input: "healthready a:1 {\n busy_window 0s\n}", wantErr: `busy_window "0s": must be positive, at Testfile:2`},
		{name: "no upstream", input: "healthready {\n path /x\n}", wantErr: "upstreams: at least one upstream is required, at Testfile:1"},
		{name: "unknown option", input: "healthready a:1 {\n bogus 1\n}", wantErr: `unrecognized healthready option "bogus"`},
		{name: "bad interval", input: "healthready a:1 {\n interval soon\n}", wantErr: `interval "soon": not a duration`},
		{name: "negative timeout", input: "healthready a:1 {\n timeout -1s\n}", wantErr: `timeout "-1s": must be positive, at Testfile:2`},
		{name: "zero timeout", input: "healthready a:1 {\n timeout 0s\n}", wantErr: `timeout "0s": must be positive`},
		{name: "rise not a number", input: "healthready a:1 {\n rise three\n}", wantErr: `rise "three": not an integer`},
		{name: "fall zero", input: "healthready a:1 {\n fall 0\n}", wantErr: `fall "0": must be at least 1, at Testfile:2`},
		{name: "concurrency zero", input: "healthready a:1 {\n concurrency 0\n}", wantErr: `concurrency "0": must be at least 1`},
		{name: "expect_status zero", input: "healthready a:1 {\n expect_status 0\n}", wantErr: `expect_status "0": must be an HTTP status (100-599)`},
		{name: "port zero", input: "healthready a:1 {\n port 0\n}", wantErr: `port "0": must be 1-65535`},
		{name: "min_ready negative", input: "healthready a:1 {\n min_ready -1\n}", wantErr: `min_ready "-1": must not be negative`},
		{
			name:    "the option written first is reported, at its line",
			input:   "healthready a:1 {\n interval 1s\n fall 0\n\n rise 0\n method PUT\n}",
			wantErr: `fall "0": must be at least 1, at Testfile:3`,
		},
		{name: "empty path", input: "healthready a:1 {\n path \"\"\n}", wantErr: `path "": must start with /`},
		{name: "port range", input: "healthready a:1 {\n port 70000\n}", wantErr: `port "70000": must be 1-65535`},
		{name: "passive_fails zero", input: "healthready a:1 {\n passive_fails 0\n}", wantErr: `passive_fails "0": must be at least 1 (or -1 to disable)`},
		{name: "bad method", input: "healthready a:1 {\n\n method POST\n}", wantErr: `method "POST": must be GET or HEAD, at Testfile:3`},
		{name: "bad scheme", input: "healthready a:1 {\n scheme ftp\n}", wantErr: `scheme "ftp"`},
		{name: "bad cluster", input: "healthready a:1 {\n cluster both\n}", wantErr: `cluster "both": must be off, write or read`},
		{name: "path without slash", input: "healthready a:1 {\n path minio\n}", wantErr: `path "minio": must start with /, at Testfile:2`},
		{name: "missing value", input: "healthready a:1 {\n\n path\n}", wantErr: "path: missing value, at Testfile:3"},
		{name: "extra value", input: "healthready a:1 {\n rise 1 2\n}", wantErr: `rise: want one value, got extra "2"`},
		{name: "header arity", input: "healthready a:1 {\n header X-A\n}", wantErr: "header: want <name> <value>"},
		{name: "flag with value", input: "healthready a:1 {\n tls_insecure_skip_verify yes\n}", wantErr: `tls_insecure_skip_verify: takes no value, got "yes"`},
		{name: "empty to", input: "healthready a:1 {\n to\n}", wantErr: "to: at least one upstream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := new(HealthReady)
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Regexp(t, `at Testfile:\d+$`, err.Error(), "errors carry file:line")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestStatusCaddyfile(t *testing.T) {
	tests := []struct {
		input, wantPool, wantErr string
	}{
		{input: "healthready_status", wantPool: ""},
		{input: "healthready_status s3", wantPool: "s3"},
		{input: "healthready_status {\n pool console\n}", wantPool: "console"},
		{input: "healthready_status a b", wantErr: `want at most one pool name, got extra "b"`},
		{input: "healthready_status {\n format json\n}", wantErr: `unrecognized healthready_status option "format"`},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			s := new(StatusHandler)
			err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Regexp(t, `at Testfile:\d+$`, err.Error(), "errors carry file:line")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantPool, s.Pool)
		})
	}
}

// TestAdaptSite: both modules adapt from a plain site block, the status
// directive ordered without a route block.
func TestAdaptSite(t *testing.T) {
	input := `:8080 {
	healthready_status /upstream/health/* s3
	reverse_proxy {
		dynamic healthready 127.0.0.1:9101 127.0.0.1:9102 {
			interval 3s
			name s3
		}
		lb_policy least_conn
		lb_retries 2
	}
	respond /x 404
}`
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	require.NoError(t, err)
	_ = warnings
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(out, &cfg))
	s := string(out)
	assert.Contains(t, s, `"handler":"healthready_status","pool":"s3"`)
	assert.Contains(t, s, `"dynamic_upstreams":{"interval":3000000000,"name":"s3","source":"healthready","upstreams":["127.0.0.1:9101","127.0.0.1:9102"]}`)
	assert.Less(t, indexOf(s, "healthready_status"), indexOf(s, `"handler":"reverse_proxy"`), "ordered before reverse_proxy")

	_, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(":8080 {\n reverse_proxy {\n  dynamic healthready a:1 {\n   rise x\n  }\n }\n}"), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `Caddyfile:4`)
	assert.Contains(t, err.Error(), `rise "x": not an integer`)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestCaddyfileErrorPositions: an error of Validate's rules names the
// place that wrote the option exactly as a parse error of the same line
// does, import chain included.
func TestCaddyfileErrorPositions(t *testing.T) {
	adapt := func(option string) error {
		input := "(probe) {\n\t" + option + "\n}\n:8080 {\n\treverse_proxy {\n\t\tdynamic healthready a:1 {\n\t\t\timport probe\n\t\t}\n\t}\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), map[string]any{"filename": "Caddyfile"})
		require.Error(t, err)
		return err
	}
	where := func(err error) string {
		_, pos, ok := strings.Cut(err.Error(), ", at ")
		require.True(t, ok, err.Error())
		return pos
	}
	parseErr, ruleErr := adapt("fall x"), adapt("fall 0")
	assert.Contains(t, ruleErr.Error(), `fall "0": must be at least 1`)
	assert.Contains(t, where(parseErr), "Caddyfile:2")
	assert.Equal(t, where(parseErr), where(ruleErr))
}
