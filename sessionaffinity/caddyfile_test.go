package sessionaffinity

import (
	"encoding/json"
	"testing"

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
		want    string // JSON of the policy
		wantErr string // substring; file:line is checked too
	}{
		{"bare: default chain", `session_affinity`, `{}`, ""},
		{"empty block: default chain", "session_affinity {\n}", `{}`, ""},
		{"all options", `session_affinity {
			query sessionid uploadid {
				case_sensitive
			}
			header X-Session-Id
			cookie sid session
			s3_multipart bucket {
				domains s3.example.com s3.local
			}
			fingerprint {http.vars.client_ip} {http.request.header.User-Agent}
			salt {env.AFFINITY_SALT}
			weight 127.0.0.1:9101 2
			weight 127.0.0.1:9102 3
			bounded_load 1.25
			fallback first
			placeholders
			response_header
		}`, `{"sources":[
			{"type":"query","names":["sessionid","uploadid"],"case_sensitive":true},
			{"type":"header","names":["X-Session-Id"]},
			{"type":"cookie","names":["sid","session"]},
			{"type":"s3_multipart","scope":"bucket","domains":["s3.example.com","s3.local"]},
			{"type":"fingerprint","placeholders":["{http.vars.client_ip}","{http.request.header.User-Agent}"]}],
			"salt":"{env.AFFINITY_SALT}","weights":{"127.0.0.1:9101":2,"127.0.0.1:9102":3},"bounded_load":1.25,
			"fallback":{"policy":"first"},"placeholders":true,"response_header":"X-Session-ID"}`, ""},
		{"order is precedence", `session_affinity {
			fingerprint
			s3_multipart
			query sid
		}`, `{"sources":[{"type":"fingerprint"},{"type":"s3_multipart"},{"type":"query","names":["sid"]}]}`, ""},
		{"fallback with options", `session_affinity {
			fallback query fb {
				fallback random
			}
			response_header X-Affinity
		}`, `{"fallback":{"policy":"query","key":"fb","fallback":{"policy":"random"}},"response_header":"X-Affinity"}`, ""},
		{"s3 object scope", `session_affinity {
			s3_multipart object
		}`, `{"sources":[{"type":"s3_multipart","scope":"object"}]}`, ""},

		{"argument after name", `session_affinity foo`, "", "wrong argument count"},
		{"unknown subdirective", "session_affinity {\n\tsticky yes\n}", "", `unrecognized option "sticky"`},
		{"query without names", "session_affinity {\n\tquery\n}", "", "query: at least one name is required"},
		{"cookie without names", "session_affinity {\n\tcookie\n}", "", "cookie: at least one name is required"},
		{"case_sensitive on header", "session_affinity {\n\theader X {\n\t\tcase_sensitive\n\t}\n}", "", `header: unrecognized option "case_sensitive"`},
		{"unknown query option", "session_affinity {\n\tquery sid {\n\t\tfold\n\t}\n}", "", `query: unrecognized option "fold"`},
		{"bad scope", "session_affinity {\n\ts3_multipart region\n}", "", `unknown scope "region"`},
		{"two scopes", "session_affinity {\n\ts3_multipart object bucket\n}", "", "wrong argument count"},
		{"unknown s3 option", "session_affinity {\n\ts3_multipart {\n\t\thosts a\n\t}\n}", "", `s3_multipart: unrecognized option "hosts"`},
		{"domains without values", "session_affinity {\n\ts3_multipart {\n\t\tdomains\n\t}\n}", "", "wrong argument count"},
		{"bounded_load 1", "session_affinity {\n\tbounded_load 1\n}", "", `bounded_load: must be a factor > 1 and at most 1e9, got "1", at Testfile:2`},
		{"bounded_load 0.5", "session_affinity {\n\tbounded_load 0.5\n}", "", `bounded_load: must be a factor > 1 and at most 1e9, got "0.5"`},
		{"bounded_load 0", "session_affinity {\n\tbounded_load 0\n}", "", `bounded_load: must be a factor > 1 and at most 1e9, got "0"`},
		{"bounded_load too big", "session_affinity {\n\tbounded_load 2e9\n}", "", `bounded_load: must be a factor > 1 and at most 1e9, got "2e+09"`},
		{"bounded_load NaN", "session_affinity {\n\tbounded_load NaN\n}", "", `bounded_load: must be a factor > 1 and at most 1e9, got "NaN"`},
		{"bounded_load Inf", "session_affinity {\n\tbounded_load Inf\n}", "", `bounded_load: must be a factor > 1 and at most 1e9, got "+Inf"`},
		{"bounded_load text", "session_affinity {\n\tbounded_load lots\n}", "", `bounded_load: want a number, got "lots"`},
		{"bounded_load missing", "session_affinity {\n\tbounded_load\n}", "", "wrong argument count"},
		{"weight 0", "session_affinity {\n\tweight 127.0.0.1:9101 0\n}", "", `weights: weight of "127.0.0.1:9101" must be a positive integer, got "0", at Testfile:2`},
		{"weight negative", "session_affinity {\n\tweight 127.0.0.1:9101 -2\n}", "", `got "-2"`},
		{"weight text", "session_affinity {\n\tweight 127.0.0.1:9101 heavy\n}", "", `weight: weight of "127.0.0.1:9101" must be an integer, got "heavy"`},
		{"bad source at its line", "session_affinity {\n\tquery sid\n\n\ts3_multipart region\n}", "", `sources[1]: s3_multipart: unknown scope "region" (want "object" or "bucket"), at Testfile:4`},
		{"bad response_header at its line", "session_affinity {\n\tquery sid\n\tresponse_header X:Y\n}", "", `response_header: invalid header name "X:Y", at Testfile:3`},
		{"the value written first is reported", "session_affinity {\n\tweight 127.0.0.1:9102 0\n\tbounded_load 1\n\tweight 127.0.0.1:9101 -1\n\tcookie\n}", "",
			`weights: weight of "127.0.0.1:9102" must be a positive integer, got "0", at Testfile:2`},
		{"weight one arg", "session_affinity {\n\tweight 127.0.0.1:9101\n}", "", "weight: want <dial address> <n>"},
		{"salt missing", "session_affinity {\n\tsalt\n}", "", "wrong argument count"},
		{"salt twice", "session_affinity {\n\tsalt a\n\tsalt b\n}", "", "salt: already specified"},
		{"placeholders with arg", "session_affinity {\n\tplaceholders on\n}", "", "wrong argument count"},
		{"fallback missing", "session_affinity {\n\tfallback\n}", "", "wrong argument count"},
		{"fallback unknown", "session_affinity {\n\tfallback nope\n}", "", "selection_policies.nope"},
		{"fallback twice", "session_affinity {\n\tfallback first\n\tfallback random\n}", "", "fallback: selection policy already specified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p SessionAffinitySelection
			err := p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				assert.Contains(t, err.Error(), "Testfile:", "error carries file:line")
				return
			}
			require.NoError(t, err)
			got, err := json.Marshal(&p)
			require.NoError(t, err)
			assert.JSONEq(t, tc.want, string(got))
		})
	}
}

// TestAdaptReverseProxy adapts a whole site, as `caddy adapt` does, to check
// the policy plugs into reverse_proxy's lb_policy.
func TestAdaptReverseProxy(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	require.NotNil(t, adapter)
	out, _, err := adapter.Adapt([]byte(`:8080 {
	reverse_proxy 127.0.0.1:9101 127.0.0.1:9102 {
		lb_policy session_affinity {
			query sessionid
			s3_multipart
			fingerprint {client_ip} {header.User-Agent}
			salt {$AFFINITY_SALT_UNSET:fixed}
		}
	}
}`), nil)
	require.NoError(t, err)
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []struct {
							LoadBalancing struct {
								SelectionPolicy json.RawMessage `json:"selection_policy"`
							} `json:"load_balancing"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	require.NoError(t, json.Unmarshal(out, &cfg))
	srv := cfg.Apps.HTTP.Servers["srv0"]
	require.NotEmpty(t, srv.Routes)
	assert.JSONEq(t, `{"policy":"session_affinity","salt":"fixed","sources":[
		{"type":"query","names":["sessionid"]},{"type":"s3_multipart"},
		{"type":"fingerprint","placeholders":["{http.vars.client_ip}","{http.request.header.User-Agent}"]}]}`,
		string(srv.Routes[0].Handle[0].LoadBalancing.SelectionPolicy))
}

func TestProvisionRejectsBadJSON(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string
	}{
		{"unknown source type", `{"sources":[{"type":"ip"}]}`, `sources[0]: type: unknown source type "ip"`},
		{"missing source type", `{"sources":[{"names":["a"]}]}`, `sources[0]: type: missing source type`},
		{"empty name list", `{"sources":[{"type":"header","names":[]}]}`, "sources[0]: header: at least one name is required"},
		{"empty name", `{"sources":[{"type":"query","names":["a",""]}]}`, `sources[0]: query: empty name in ["a" ""]`},
		{"bad scope", `{"sources":[{"type":"fingerprint"},{"type":"s3_multipart","scope":"region"}]}`, `sources[1]: s3_multipart: unknown scope "region"`},
		{"names on fingerprint", `{"sources":[{"type":"fingerprint","names":["x"]}]}`, "fingerprint: names apply to query, header and cookie sources only"},
		{"case_sensitive on cookie", `{"sources":[{"type":"cookie","names":["x"],"case_sensitive":true}]}`, "cookie: case_sensitive applies to query sources only"},
		{"bounded_load 1", `{"bounded_load":1}`, `bounded_load: must be a factor > 1 and at most 1e9, got "1"`},
		{"bounded_load negative", `{"bounded_load":-3}`, `bounded_load: must be a factor > 1 and at most 1e9, got "-3"`},
		{"bounded_load too big", `{"bounded_load":1e12}`, `bounded_load: must be a factor > 1 and at most 1e9, got "1e+12"`},
		{"weight 0", `{"weights":{"127.0.0.1:9101":0}}`, `weights: weight of "127.0.0.1:9101" must be a positive integer, got "0"`},
		{"weights in address order", `{"weights":{"127.0.0.1:9102":0,"127.0.0.1:9101":-1}}`, `weights: weight of "127.0.0.1:9101" must be a positive integer, got "-1"`},
		{"empty weight address", `{"weights":{"":2}}`, "weights: empty upstream address"},
		{"bad response header", `{"response_header":"X Session"}`, `response_header: invalid header name "X Session"`},
		{"unknown fallback", `{"fallback":{"policy":"nope"}}`, "loading fallback selection policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p SessionAffinitySelection
			require.NoError(t, json.Unmarshal([]byte(tc.json), &p))
			ctx, cancel := newCaddyContext()
			defer cancel()
			err := p.Provision(ctx)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// TestValidateBoundedLoad: one rule for bounded_load, whether the value
// comes from JSON or from the Caddyfile.
func TestValidateBoundedLoad(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{"1.0001", true}, {"1.25", true}, {"1e9", true},
		{"1", false}, {"0.5", false}, {"-3", false}, {"1000000001", false}, {"1e12", false},
	}
	for _, tc := range tests {
		t.Run(tc.value, func(t *testing.T) {
			var fromJSON SessionAffinitySelection
			require.NoError(t, json.Unmarshal([]byte(`{"bounded_load":`+tc.value+`}`), &fromJSON))
			var fromCaddyfile SessionAffinitySelection
			caddyfileErr := fromCaddyfile.UnmarshalCaddyfile(caddyfile.NewTestDispenser("session_affinity {\n\tbounded_load " + tc.value + "\n}"))
			jsonErr := fromJSON.Validate()
			if tc.ok {
				assert.NoError(t, jsonErr)
				assert.NoError(t, caddyfileErr)
				return
			}
			require.Error(t, jsonErr)
			require.Error(t, caddyfileErr)
			assert.Equal(t, jsonErr.Error()+", at Testfile:2", caddyfileErr.Error(), "the same words")
		})
	}
	var zero SessionAffinitySelection
	assert.NoError(t, zero.Validate(), "absent in JSON: off")
}
