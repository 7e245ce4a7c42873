package caddyfile

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/stretchr/testify/require"
)

// site wraps a reverse_proxy body in a site; the body starts on line 3.
func site(body string) string {
	return ":8080 {\n\treverse_proxy {\n" + body + "\n\t}\n}\n"
}

// TestAdaptErrors: bad input fails at adapt time with the file, the line
// and the option (and the bad value) in the message.
func TestAdaptErrors(t *testing.T) {
	const ha = "\t\tdynamic healthready 127.0.0.1:9101 {\n"
	const sa = "\t\tto 127.0.0.1:9101\n\t\tlb_policy session_affinity {\n"
	tests := []struct {
		name  string
		input string
		want  []string // substrings of the error
	}{
		// healthready
		{"healthready unknown option", site(ha + "\t\t\tintervall 3s\n\t\t}"), []string{"Caddyfile:4", `"intervall"`, "healthready"}},
		{"healthready missing argument", site(ha + "\t\t\tinterval\n\t\t}"), []string{"Caddyfile:4", "interval", "missing value"}},
		{"healthready extra argument", site(ha + "\t\t\trise 3 4\n\t\t}"), []string{"Caddyfile:4", "rise", `"4"`}},
		{"healthready bad duration", site(ha + "\t\t\tinterval 3x\n\t\t}"), []string{"Caddyfile:4", "interval", `"3x"`, "duration"}},
		{"healthready negative duration", site(ha + "\t\t\ttimeout -1s\n\t\t}"), []string{"Caddyfile:4", "timeout", `"-1s"`}},
		{"healthready bad passive_window", site(ha + "\t\t\tpassive_window soon\n\t\t}"), []string{"Caddyfile:4", "passive_window", `"soon"`}},
		{"healthready bad number", site(ha + "\t\t\trise three\n\t\t}"), []string{"Caddyfile:4", "rise", `"three"`, "integer"}},
		{"healthready zero fall", site(ha + "\t\t\tfall 0\n\t\t}"), []string{"Caddyfile:4", "fall", `"0"`}},
		{"healthready bad port", site(ha + "\t\t\tport 70000\n\t\t}"), []string{"Caddyfile:4", "port", `"70000"`, "1-65535"}},
		{"healthready port not a number", site(ha + "\t\t\tport http\n\t\t}"), []string{"Caddyfile:4", "port", `"http"`}},
		{"healthready bad expect_status", site(ha + "\t\t\texpect_status 42\n\t\t}"), []string{"Caddyfile:4", "expect_status", `"42"`}},
		{"healthready bad passive_fails", site(ha + "\t\t\tpassive_fails 0\n\t\t}"), []string{"Caddyfile:4", "passive_fails", `"0"`}},
		{"healthready bad method", site(ha + "\t\t\tmethod POST\n\t\t}"), []string{"Caddyfile:4", "method", `"POST"`}},
		{"healthready bad scheme", site(ha + "\t\t\tscheme ftp\n\t\t}"), []string{"Caddyfile:4", "scheme", `"ftp"`}},
		{"healthready bad cluster", site(ha + "\t\t\tcluster quorum\n\t\t}"), []string{"Caddyfile:4", "cluster", `"quorum"`}},
		{"healthready relative path", site(ha + "\t\t\tpath minio/health/ready\n\t\t}"), []string{"Caddyfile:4", "path", `"minio/health/ready"`}},
		{"healthready probe_to empty", site(ha + "\t\t\tprobe_to\n\t\t}"), []string{"Caddyfile:4", "probe_to"}},
		{"healthready header one value", site(ha + "\t\t\theader X-Probe\n\t\t}"), []string{"Caddyfile:4", "header"}},
		{"healthready no upstream", site("\t\tdynamic healthready {\n\t\t\tinterval 3s\n\t\t}"), []string{"Caddyfile:", "at least one upstream"}},

		// session_affinity
		{"session_affinity unknown option", site(sa + "\t\t\tsalty x\n\t\t}"), []string{"Caddyfile:5", `"salty"`, "session_affinity"}},
		{"session_affinity argument on the policy", site("\t\tto 127.0.0.1:9101\n\t\tlb_policy session_affinity sessionid"), []string{"Caddyfile:4", "sessionid"}},
		{"session_affinity missing salt", site(sa + "\t\t\tsalt\n\t\t}"), []string{"Caddyfile:5", "salt"}},
		{"session_affinity salt twice", site(sa + "\t\t\tsalt a\n\t\t\tsalt b\n\t\t}"), []string{"Caddyfile:6", "salt"}},
		{"session_affinity query without name", site(sa + "\t\t\tquery\n\t\t}"), []string{"Caddyfile:5", "query"}},
		{"session_affinity unknown query option", site(sa + "\t\t\tquery sid {\n\t\t\t\tfold\n\t\t\t}\n\t\t}"), []string{"Caddyfile:6", "query", `"fold"`}},
		{"session_affinity bad scope", site(sa + "\t\t\ts3_multipart object_key\n\t\t}"), []string{"Caddyfile:5", "s3_multipart", `"object_key"`}},
		{"session_affinity bad bounded_load", site(sa + "\t\t\tbounded_load high\n\t\t}"), []string{"Caddyfile:5", "bounded_load", `"high"`}},
		{"session_affinity bounded_load too small", site(sa + "\t\t\tbounded_load 0.5\n\t\t}"), []string{"Caddyfile:5", "bounded_load", `"0.5"`}},
		{"session_affinity bad weight", site(sa + "\t\t\tweight 127.0.0.1:9101 heavy\n\t\t}"), []string{"Caddyfile:5", "weight", `"heavy"`}},
		{"session_affinity weight missing value", site(sa + "\t\t\tweight 127.0.0.1:9101\n\t\t}"), []string{"Caddyfile:5", "weight"}},
		{"session_affinity unknown fallback", site(sa + "\t\t\tfallback nearest\n\t\t}"), []string{"Caddyfile:5", "nearest"}},
		// The policy's generic argument-count error names the extra value but
		// not the option (reported to the module's owner).
		{"session_affinity response_header extra value", site(sa + "\t\t\tresponse_header X-A B\n\t\t}"), []string{"Caddyfile:5", "'B'"}},

		// healthready_status, s3_header_case
		{"healthready_status two pools", ":8080 {\n\thealthready_status s3 console\n}\n", []string{"Caddyfile:2", "healthready_status", `"console"`}},
		{"healthready_status unknown option", ":8080 {\n\thealthready_status {\n\t\tformat json\n\t}\n}\n", []string{"Caddyfile:3", "healthready_status", `"format"`}},
		{"healthready_status pool without name", ":8080 {\n\thealthready_status {\n\t\tpool\n\t}\n}\n", []string{"Caddyfile:3", "pool", "missing value"}},
		{"s3_header_case unknown option", ":8080 {\n\ts3_header_case {\n\t\tsuffix x\n\t}\n}\n", []string{"Caddyfile:3", "s3_header_case", `"suffix"`}},
		{"s3_header_case prefix without value", ":8080 {\n\ts3_header_case {\n\t\tprefix\n\t}\n}\n", []string{"Caddyfile:3", "prefix"}},
		{"s3_header_case upper-case prefix", ":8080 {\n\ts3_header_case {\n\t\tprefix X-Amz-Meta-\n\t}\n}\n", []string{"Caddyfile:3", "prefix", "X-Amz-Meta-"}},
		{"s3_header_case argument", ":8080 {\n\ts3_header_case x-amz-meta-\n}\n", []string{"Caddyfile:2", "s3_header_case", `"x-amz-meta-"`}},

		// Caddy's own directives in the example
		{"site port out of range", "http://:99999 {\n\trespond ok\n}\n", []string{"99999"}},
		{"lb_retries not a number", site("\t\tto 127.0.0.1:9101\n\t\tlb_retries two"), []string{"Caddyfile:4", "two"}},
		{"flush_interval bad duration", site("\t\tto 127.0.0.1:9101\n\t\tflush_interval soon"), []string{"Caddyfile:4", "soon"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := adaptErr([]byte(tc.input), "Caddyfile")
			require.Error(t, err, "input:\n%s", tc.input)
			t.Log(err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w, "input:\n%s", tc.input)
			}
		})
	}
}

// TestProvisionErrors: input that the Caddyfile parsers take but that is
// checked when the config is loaded (as `caddy validate`, `caddy run` and
// POST /load do). JSON has no line numbers: the message names the option
// and the value.
func TestProvisionErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"remote_ip bad CIDR", ":8080 {\n\t@ops remote_ip 10.10.0.0/33\n\trespond @ops ok\n}\n", []string{"remote_ip", "10.10.0.0/33"}},
		{"remote_ip not an address", ":8080 {\n\t@ops remote_ip 10.10.0.300\n\trespond @ops ok\n}\n", []string{"remote_ip", "10.10.0.300"}},
		{"healthready probe_to count", site("\t\tdynamic healthready 127.0.0.1:9201 127.0.0.1:9202 {\n\t\t\tprobe_to 127.0.0.1:9101\n\t\t}"), []string{"probe_to", "1 addresses for 2 upstreams"}},
		{"healthready probe_to bad port", site("\t\tdynamic healthready 127.0.0.1:9201 {\n\t\t\tprobe_to 127.0.0.1:99999\n\t\t}"), []string{"probe_to", "127.0.0.1:99999"}},
		{"healthready upstream without port", site("\t\tdynamic healthready 127.0.0.1 {\n\t\t}"), []string{"upstreams[0]", "127.0.0.1"}},
		{"healthready port with probe_to", site("\t\tdynamic healthready 127.0.0.1:9201 {\n\t\t\tport 9000\n\t\t\tprobe_to 127.0.0.1:9101\n\t\t}"), []string{"port", "probe_to"}},
		{"healthready tls without https", site("\t\tdynamic healthready 127.0.0.1:9201 {\n\t\t\ttls_insecure_skip_verify\n\t\t}"), []string{"tls_insecure_skip_verify", "https"}},
		{"healthready min_ready above pool", site("\t\tdynamic healthready 127.0.0.1:9201 {\n\t\t\tmin_ready 2\n\t\t}"), []string{"min_ready", "2"}},
		{"healthready upstream listed twice", site("\t\tdynamic healthready 127.0.0.1:9201 127.0.0.1:9201"), []string{"upstreams[1]", "127.0.0.1:9201", "twice"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := adaptErr([]byte(tc.input), "Caddyfile")
			require.NoError(t, err, "the Caddyfile parsers accept this; the check is at load")
			var cfg caddy.Config
			require.NoError(t, json.Unmarshal(out, &cfg))
			cfg.Admin = &caddy.AdminConfig{Disabled: true}
			err = caddy.Validate(&cfg)
			require.Error(t, err)
			t.Log(err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}
