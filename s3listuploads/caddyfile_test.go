package s3listuploads

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		want    string
		wantErr string
	}{
		{"pool as argument", "s3_list_uploads s3", `{"pool":"s3"}`, ""},
		{"pool in the block", "s3_list_uploads {\n\tpool s3\n}", `{"pool":"s3"}`, ""},
		{"every option", `s3_list_uploads {
			pool s3
			timeout 10s
			max_response_size 1048576
			scheme https
			tls_insecure_skip_verify
			tls_server_name minio.internal
			domains s3.example.com s3.local
		}`, `{"pool":"s3","timeout":10000000000,"max_response_size":1048576,"scheme":"https",
			"tls_insecure_skip_verify":true,"tls_server_name":"minio.internal","domains":["s3.example.com","s3.local"]}`, ""},

		{"no pool", "s3_list_uploads", "", "pool: the name of a healthready pool is required"},
		{"two arguments", "s3_list_uploads s3 console", "", "wrong argument count"},
		{"pool twice", "s3_list_uploads s3 {\n\tpool other\n}", "", `pool: already specified ("s3")`},
		{"pool without name", "s3_list_uploads {\n\tpool\n}", "", "wrong argument count"},
		{"bad timeout", "s3_list_uploads s3 {\n\ttimeout soon\n}", "", `timeout: must be a positive duration, got "soon"`},
		{"zero timeout", "s3_list_uploads s3 {\n\ttimeout 0s\n}", "", `timeout: must be a positive duration, got "0s"`},
		{"bad size", "s3_list_uploads s3 {\n\tmax_response_size 1MB\n}", "", `max_response_size: must be a positive number of bytes, got "1MB"`},
		{"bad scheme", "s3_list_uploads s3 {\n\tscheme ftp\n}", "", `scheme "ftp": must be http or https`},
		{"tls without https", "s3_list_uploads s3 {\n\ttls_insecure_skip_verify\n}", "", `need scheme https, got scheme ""`},
		{"flag with argument", "s3_list_uploads s3 {\n\tscheme https\n\ttls_insecure_skip_verify yes\n}", "", "wrong argument count"},
		{"empty domains", "s3_list_uploads s3 {\n\tdomains\n}", "", "wrong argument count"},
		{"unknown option", "s3_list_uploads s3 {\n\tnodes 3\n}", "", `unrecognized option "nodes"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l ListUploads
			err := l.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Contains(t, err.Error(), "Testfile:", "error carries file:line")
				return
			}
			require.NoError(t, err)
			got, err := json.Marshal(&l)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		l       ListUploads
		wantErr string
	}{
		{ListUploads{Pool: "s3"}, ""},
		{ListUploads{}, "pool: the name of a healthready pool is required"},
		{ListUploads{Pool: "s3", Timeout: -1}, "timeout -1ns: must be positive"},
		{ListUploads{Pool: "s3", MaxResponseSize: -5}, "max_response_size -5: must be positive"},
		{ListUploads{Pool: "s3", Scheme: "HTTP"}, `scheme "HTTP": must be http or https`},
		{ListUploads{Pool: "s3", TLSServerName: "x"}, "tls_insecure_skip_verify/tls_server_name: need scheme https"},
		{ListUploads{Pool: "s3", Domains: []string{".."}}, `domains: empty domain in [".."]`},
	}
	for _, tc := range tests {
		err := tc.l.Validate()
		if tc.wantErr == "" {
			assert.NoError(t, err)
			continue
		}
		assert.ErrorContains(t, err, tc.wantErr)
	}
}
