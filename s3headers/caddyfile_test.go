package s3headers

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    []string
		wantErr string
	}{
		{name: "bare directive keeps defaults for Provision", input: `s3_header_case`, want: nil},
		{name: "empty block", input: "s3_header_case {\n}", want: nil},
		{
			name:  "one prefix line, several values",
			input: "s3_header_case {\n prefix x-amz-meta- x-amz-checksum-\n}",
			want:  []string{"x-amz-meta-", "x-amz-checksum-"},
		},
		{
			name:  "repeated prefix lines add up",
			input: "s3_header_case {\n prefix x-amz-meta-\n prefix x-minio-meta-\n}",
			want:  []string{"x-amz-meta-", "x-minio-meta-"},
		},
		{
			name:    "upper-case prefix",
			input:   "s3_header_case {\n prefix X-Amz-Meta-\n}",
			wantErr: `prefix: prefix "X-Amz-Meta-": must be lower case ("x-amz-meta-")`,
		},
		{
			name:    "prefix with a byte not allowed in a header name",
			input:   "s3_header_case {\n prefix \"x-amz meta\"\n}",
			wantErr: `prefix "x-amz meta": byte ' ' is not allowed`,
		},
		{
			name:    "prefix without values",
			input:   "s3_header_case {\n prefix\n}",
			wantErr: "prefix: needs at least one value",
		},
		{
			name:    "unknown option",
			input:   "s3_header_case {\n lowercase all\n}",
			wantErr: `unknown option "lowercase"`,
		},
		{
			name:    "inline argument",
			input:   "s3_header_case x-amz-meta-",
			wantErr: `unexpected argument "x-amz-meta-"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hc HeaderCase
			err := hc.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tt.input))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), "s3_header_case")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, hc.Prefixes)
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		prefixes []string
		wantErr  string
	}{
		{name: "defaults", prefixes: DefaultPrefixes},
		{name: "empty string", prefixes: []string{"x-amz-meta-", ""}, wantErr: "prefixes[1]: empty prefix"},
		{name: "upper case", prefixes: []string{"X-"}, wantErr: `prefixes[0]: prefix "X-": must be lower case`},
		{name: "colon", prefixes: []string{"x-a:"}, wantErr: `prefixes[0]: prefix "x-a:": byte ':' is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&HeaderCase{Prefixes: tt.prefixes}).Validate()
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}

// adapt turns a Caddyfile into the JSON of its first server's routes.
func adapt(t *testing.T, caddyfileText string) (string, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	require.NotNil(t, adapter)
	out, _, err := adapter.Adapt([]byte(caddyfileText), nil)
	return string(out), err
}

func TestCaddyfileAdaptOrder(t *testing.T) {
	tests := []struct {
		name      string
		caddyfile string
		// Handler names in the order their "handler" keys appear in the
		// adapted JSON, which is the order they run.
		wantOrder []string
		wantJSON  string
	}{
		{
			name: "written after reverse_proxy, still runs before it",
			caddyfile: `http://:8080 {
	reverse_proxy 127.0.0.1:9000
	s3_header_case
}`,
			wantOrder: []string{"s3_header_case", "reverse_proxy"},
			wantJSON:  `{"handler":"s3_header_case"}`,
		},
		{
			name: "before handle blocks and header",
			caddyfile: `http://:8080 {
	handle {
		reverse_proxy 127.0.0.1:9000
	}
	header >X-Served-By caddy
	s3_header_case {
		prefix x-amz-meta-
	}
}`,
			wantOrder: []string{"s3_header_case", "headers", "subroute", "reverse_proxy"},
			wantJSON:  `{"handler":"s3_header_case","prefixes":["x-amz-meta-"]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := adapt(t, tt.caddyfile)
			require.NoError(t, err)
			assert.Contains(t, out, tt.wantJSON)
			var got []string
			for _, part := range strings.Split(out, `"handler":"`)[1:] {
				got = append(got, part[:strings.IndexByte(part, '"')])
			}
			assert.Equal(t, tt.wantOrder, got, out)
			assert.True(t, json.Valid([]byte(out)))
		})
	}
}

func TestCaddyfileAdaptError(t *testing.T) {
	_, err := adapt(t, "http://:8080 {\n\ts3_header_case {\n\t\tprefix X-Amz-Meta-\n\t}\n\treverse_proxy 127.0.0.1:9000\n}\n")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `s3_header_case: prefix: prefix "X-Amz-Meta-": must be lower case`)
	assert.Contains(t, err.Error(), "Caddyfile:3")
}
