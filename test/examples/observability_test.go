package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/internal/freeport"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"github.com/minio-lb/caddy-minio-lb/internal/traffic"
	"github.com/minio-lb/caddy-minio-lb/test/internal/caddyproc"
)

func prometheusDir(t testing.TB) string { return filepath.Join(repoRoot(t), "examples", "prometheus") }

func dashboardPath(t testing.TB) string {
	return filepath.Join(repoRoot(t), "examples", "grafana", "caddy-minio-lb.json")
}

// TestPrometheusExamples: promtool accepts the scrape config and the alert
// rules, and the rules' unit tests (each alert fires on the series that
// should trigger it and on no others) pass.
func TestPrometheusExamples(t *testing.T) {
	promtool := tool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		{"check", "rules", "caddy-minio-lb.rules.yml"},
		{"test", "rules", "caddy-minio-lb.rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = prometheusDir(t)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	}
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string `yaml:"alert"`
			Record string `yaml:"record"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type dashPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Repeat  string `json:"repeat"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Datasource struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
}

// promExprs returns every PromQL expression of the alert rules and the
// dashboard (targets and template variables), by where it is.
func promExprs(t testing.TB) map[string]string {
	out := make(map[string]string)
	var rf ruleFile
	require.NoError(t, yaml.Unmarshal(readFile(t, filepath.Join(prometheusDir(t), "caddy-minio-lb.rules.yml")), &rf))
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out["rule "+r.Alert+r.Record] = r.Expr
		}
	}
	var d dashboard
	require.NoError(t, json.Unmarshal(readFile(t, dashboardPath(t)), &d))
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			out[fmt.Sprintf("panel %q target %d", p.Title, i)] = tg.Expr
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			out["variable "+v.Name] = m[1]
		}
	}
	return out
}

// grafanaVars replaces Grafana's variables by values PromQL parses.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h",
	"$instance", "x", "$pool", "x")

// metricNames parses expr and returns the metric names it selects.
func metricNames(t testing.TB, where, expr string) []string {
	t.Helper()
	e, err := parser.ParseExpr(grafanaVars.Replace(expr))
	require.NoError(t, err, "%s: PromQL does not parse:\n%s", where, expr)
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel {
					name = m.Value
				}
			}
			require.NotEmpty(t, name, "%s: a selector without a metric name: %s", where, vs)
			names = append(names, name)
		}
		return nil
	})
	return names
}

// fakeMinIO is a MinIO node as far as the proxy and its probes can tell:
// ready, cluster quorum ok, and S3 answers (GET /b/fail answers 502, so a
// proxy with retries retries it elsewhere).
func fakeMinIO(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/minio/health/"):
			w.WriteHeader(http.StatusOK)
		case r.URL.Path == "/b/fail":
			w.WriteHeader(http.StatusBadGateway)
		case r.Method == http.MethodPut:
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("ETag", `"etag"`)
		default:
			_, _ = io.WriteString(w, "hello from "+r.Host)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// observabilityCaddyfile is a proxy like examples/Caddyfile's S3 site with
// the metrics snippet of docs/observability.md ("Scraping"): /metrics
// under the status page's prefix, ops networks only. transport is "" or
// the transport line to use.
const observabilityCaddyfile = `{
	admin {$CADDY_ADMIN}
	metrics
}
http://127.0.0.1:{$S3_PORT} {
	handle /upstream/health/* {
		@ops_networks remote_ip 10.10.0.0/16 172.31.0.0/16 127.0.0.0/8 ::1
		handle @ops_networks {
			handle /upstream/health/metrics {
				metrics
			}
			handle {
				healthready_status
			}
		}
		handle {
			respond "forbidden" 403
		}
	}
	handle {
		reverse_proxy {
			dynamic healthready {$NODES} {
				name s3
				interval 200ms
				rise 1
				fall 1
				cluster write
			}
			lb_policy session_affinity {
				query sessionid
				fingerprint
				salt observability-test
			}
			lb_retries 2
			lb_retry_match {
				method GET HEAD
				expression ` + "`{rp.status_code} in [502, 503, 504]`" + `
			}
			{$TRANSPORT}
		}
	}
}
`

// TestDashboardAndRulesUseExportedMetrics: every metric that a PromQL
// expression of the alert rules or the Grafana dashboard selects is one
// that the custom Caddy exports, read from a running one's /metrics
// (through the metrics snippet of docs/observability.md) after traffic
// through it. Prometheus's own `up` is the one exception.
//
// The per-node traffic metrics need the minio transport to record the
// attempts (internal/traffic). While the binary's transport records none
// (the recording is not wired in yet, or the transport is not built in),
// the traffic metric names are checked against the ones internal/traffic's
// collector registers instead, and the test says so in its log; once
// caddy_minio_lb_requests_total shows up after traffic, every name must
// be scraped.
func TestDashboardAndRulesUseExportedMetrics(t *testing.T) {
	bin := caddyBin(t)
	mods, err := exec.Command(bin, "list-modules").Output()
	require.NoError(t, err)
	withTransport := strings.Contains(string(mods), "http.reverse_proxy.transport.minio")
	transport := ""
	if withTransport {
		transport = "transport minio"
	}

	a, b := fakeMinIO(t), fakeMinIO(t)
	ports, err := freeport.Ports(1)
	require.NoError(t, err)
	site := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	p := caddyproc.StartT(t, caddyproc.Options{
		Caddyfile: observabilityCaddyfile,
		Env:       []string{fmt.Sprintf("S3_PORT=%d", ports[0]), "NODES=" + a + " " + b, "TRANSPORT=" + transport},
	})
	_ = p

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(method, path string) int {
		req, err := http.NewRequest(method, site+path, strings.NewReader(""))
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Both nodes ready (the status page's readiness answer), then traffic:
	// reads, writes, a listing, and reads that fail on every node.
	for get(http.MethodGet, "/upstream/health/ready") != http.StatusOK {
		require.NoError(t, ctx.Err(), "the pool never got ready")
		time.Sleep(100 * time.Millisecond) // polling a condition under ctx's deadline
	}
	for i := range 20 {
		require.Equal(t, http.StatusOK, get(http.MethodGet, fmt.Sprintf("/b/o%d?sessionid=s%d", i, i)))
		require.Equal(t, http.StatusOK, get(http.MethodPut, fmt.Sprintf("/b/o%d?sessionid=s%d", i, i)))
		require.Equal(t, http.StatusOK, get(http.MethodHead, fmt.Sprintf("/b/o%d?sessionid=s%d", i, i)))
	}
	require.Equal(t, http.StatusOK, get(http.MethodGet, "/b?list-type=2"))
	require.Equal(t, http.StatusBadGateway, get(http.MethodGet, "/b/fail"))

	families := scrapeFamilies(t, client, site+"/upstream/health/metrics")
	exported := make(map[string]bool)
	for name, mf := range families {
		exported[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[name+s] = true
			}
		}
	}
	registered := make(map[string]bool)
	for _, name := range traffic.MetricNames() {
		registered[name] = true
	}

	recorded := exported["caddy_minio_lb_requests_total"]
	var missing, fromCollector []string
	used := 0
	for where, expr := range promExprs(t) {
		for _, name := range metricNames(t, where, expr) {
			used++
			switch {
			case exported[name] || name == "up":
			case !recorded && registered[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")]:
				fromCollector = append(fromCollector, name)
			default:
				missing = append(missing, fmt.Sprintf("%s (%s)", name, where))
			}
		}
	}
	sort.Strings(missing)
	require.Positive(t, used)
	require.Empty(t, missing, "metrics that the dashboard or the alert rules use but %s does not export", bin)
	if len(fromCollector) > 0 {
		slices.Sort(fromCollector)
		t.Logf("NOTE: %s records no per-node traffic (minio transport built in: %v), "+
			"so these names were checked against internal/traffic's collector, not a scrape: %s",
			bin, withTransport, strings.Join(slices.Compact(fromCollector), ", "))
	}
	// The snippet serves the same registry as the admin endpoint.
	admin := scrapeFamilies(t, client, "http://"+p.AdminAddr()+"/metrics")
	assert.Contains(t, admin, "caddy_minio_lb_node_ready")
	assert.Contains(t, families, "caddy_minio_lb_node_ready")

	// Our metrics follow Prometheus's naming rules (promtool's linter).
	ours := make(map[string]*dto.MetricFamily)
	for name, mf := range families {
		if strings.HasPrefix(name, traffic.Namespace) {
			ours[name] = mf
		}
	}
	promtoolLint(t, ours)
}

// TestTrafficMetricsLint: every traffic metric, with a value recorded for
// each, passes promtool's linter (names, units, _total on counters), with
// or without a transport in the binary.
func TestTrafficMetricsLint(t *testing.T) {
	a, b := traffic.For("lint-test", "a:1"), traffic.For("lint-test", "b:1")
	a.Begin()
	a.End(s3op.GetObject, 200, time.Millisecond, traffic.OK, 10, 20)
	a.Begin()
	a.End(s3op.PutObject, 0, 0, traffic.Retried, 0, 0)
	a.Retry(b)
	b.Hedge(true)
	b.Busy()
	p := traffic.Pool("lint-test")
	p.HoldBegin()
	p.Hold(time.Second, traffic.HoldServed)
	reg := prometheus.NewRegistry()
	require.NoError(t, traffic.Register(reg))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	fams := make(map[string]*dto.MetricFamily)
	for _, mf := range mfs {
		fams[mf.GetName()] = mf
	}
	for _, name := range traffic.MetricNames() {
		require.Contains(t, fams, name)
	}
	promtoolLint(t, fams)
}

// promtoolLint runs `promtool check metrics` on the families.
func promtoolLint(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	require.NotEmpty(t, fams)
	var text bytes.Buffer
	names := make([]string, 0, len(fams))
	for name := range fams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		_, err := expfmt.MetricFamilyToText(&text, fams[name])
		require.NoError(t, err)
	}
	cmd := exec.Command(tool(t, "promtool", "prometheus"), "check", "metrics")
	cmd.Stdin = &text
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
}

func scrapeFamilies(t testing.TB, client *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, url)
	return mfs
}
