package healthready

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// textState renders a node state like lua-resty-upstream-healthcheck.
func textState(n NodeView) string { return nodeStates[n.state].text }

// stateBadge is the HTML page's badge of a node state.
func stateBadge(n NodeView) struct{ Class, Label string } {
	s := nodeStates[n.state]
	return struct{ Class, Label string }{s.badge, s.label}
}

// renderText is the plain text page, with the last minute's traffic in
// brackets:
//
//	Upstream s3 (ready 4/4, min_ready 1, 95.1 req/s, 0.4% errors, p50 2.9ms, p99 41.7ms, 3 in flight)
//	    Primary Peers
//	        127.0.0.1:9101 UP (0.5ms) [31.2 req/s, 0.0% err, p50 2.7ms, p99 12.1ms, 1 in flight, in 1.0 MB/s, out 9.8 MB/s]
func renderText(views []PoolView) string {
	var b strings.Builder
	if len(views) == 0 {
		b.WriteString("No healthready pools.\n")
	}
	for i, v := range views {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Upstream %s (ready %d/%d, min_ready %d", v.Name, v.Routable, v.Total, v.MinReady)
		if v.FailOpen {
			b.WriteString(", FAIL-OPEN")
		}
		if v.Cluster != nil {
			fmt.Fprintf(&b, ", cluster %s quorum %s", v.Cluster.Gate, v.Cluster.Quorum)
		}
		if v.Traffic.active() {
			b.WriteString(", " + strings.Join(trafficText(v.Traffic.TrafficView, "errors", false), ", "))
		}
		if v.Traffic.Holding > 0 {
			fmt.Fprintf(&b, ", %d HOLDING", v.Traffic.Holding)
		}
		b.WriteString(")\n    Primary Peers\n")
		for _, n := range v.Nodes {
			fmt.Fprintf(&b, "        %s %s", n.Upstream, textState(n))
			var extra []string
			if n.Probe != n.Upstream {
				extra = append(extra, "probe "+n.Probe)
			}
			if n.Reason != "" && n.state != nodeReady {
				extra = append(extra, n.Reason)
			}
			if n.Probes > 0 {
				extra = append(extra, fmt.Sprintf("%.1fms", n.LastLatencyMS))
			}
			if n.PassiveFailures > 0 {
				extra = append(extra, fmt.Sprintf("passive failures %d", n.PassiveFailures))
			}
			if n.InFlight > 0 {
				extra = append(extra, fmt.Sprintf("in flight %d", n.InFlight))
			}
			if n.CaddyFails > 0 {
				extra = append(extra, fmt.Sprintf("caddy fails %d", n.CaddyFails))
			}
			if n.OfflineAnswers > 0 {
				extra = append(extra, fmt.Sprintf("offline answers %d", n.OfflineAnswers))
			}
			if len(extra) > 0 {
				b.WriteString(" (" + strings.Join(extra, ", ") + ")")
			}
			if n.Traffic.active() {
				b.WriteString(" [" + strings.Join(trafficText(n.Traffic, "err", true), ", ") + "]")
			}
			b.WriteString("\n")
		}
		b.WriteString("    Backup Peers\n")
	}
	return b.String()
}

// trafficText is the text page's words for a traffic view: rate and
// errors always, the rest when there is something to say; bytes only for
// nodes (the pool line stays short).
func trafficText(t TrafficView, errWord string, bytes bool) []string {
	out := []string{fmt.Sprintf("%.1f req/s", t.ReqPerSec), fmt.Sprintf("%.1f%% %s", t.ErrorPct, errWord)}
	if t.P99MS > 0 {
		out = append(out, "p50 "+msText(t.P50MS), "p99 "+msText(t.P99MS))
	}
	if t.Retried > 0 {
		out = append(out, fmt.Sprintf("%d retried", t.Retried))
	}
	if t.InFlight > 0 {
		out = append(out, fmt.Sprintf("%d in flight", t.InFlight))
	}
	if bytes && t.BytesInPerSec > 0 {
		out = append(out, "in "+byteRate(t.BytesInPerSec))
	}
	if bytes && t.BytesOutPerSec > 0 {
		out = append(out, "out "+byteRate(t.BytesOutPerSec))
	}
	return out
}

// msText is a latency in ms with three significant digits at most.
func msText(ms float64) string {
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0fms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.2fms", ms)
}

// byteRate is bytes per second in decimal units, as network rates are.
func byteRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.1f GB/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.1f MB/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.1f kB/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f B/s", bps)
}

// errClass colours an error percentage on the HTML page: amber above 1%,
// red above 5% (the alert rule's threshold).
func errClass(pct float64) string {
	switch {
	case pct > 5:
		return "ebad"
	case pct > 1:
		return "ewarn"
	}
	return ""
}

var htmlPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return time.Since(t).Truncate(time.Second).String() + " ago"
	},
	"ms":    func(f float64) string { return fmt.Sprintf("%.1f ms", f) },
	"badge": stateBadge,
	"lat": func(ms float64) string {
		if ms <= 0 {
			return "-"
		}
		return strings.TrimSuffix(msText(ms), "ms") + " ms"
	},
	"rate": func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"pct":  func(f float64) string { return fmt.Sprintf("%.1f%%", f) },
	"bytes": func(bps float64) string {
		if bps <= 0 {
			return "-"
		}
		return byteRate(bps)
	},
	"errClass": errClass,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="3">
<title>healthready status</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:20px;margin:0 0 4px}
.sub{color:#5b6475;margin-bottom:16px}
.pool{background:#fff;border:1px solid #dde1e8;border-radius:8px;margin-bottom:20px;overflow:hidden}
.head{display:flex;gap:12px;align-items:center;padding:10px 14px;border-bottom:1px solid #dde1e8}
.head h2{font-size:16px;margin:0;font-family:ui-monospace,monospace}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.ok{background:#1f9d55}.bad{background:#d64545}.warn{background:#d98a00}.unk{background:#7a8394}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f4;white-space:nowrap}
.wrap{overflow-x:auto}
.small{font-size:12px;color:#5b6475}
th{font-size:12px;color:#5b6475;font-weight:600;background:#fafbfc;white-space:normal;vertical-align:bottom}
td.mono{font-family:ui-monospace,monospace}
td.st{white-space:normal;min-width:170px;max-width:280px}
.reason{white-space:normal;margin-top:2px}
tr.ready td:first-child{border-left:4px solid #1f9d55}
tr.not_ready td:first-child,tr.ejected td:first-child{border-left:4px solid #d64545}
tr.unknown td:first-child{border-left:4px solid #7a8394}
th.n,td.n{text-align:right;font-variant-numeric:tabular-nums}
th.g,td.g{border-left:1px solid #dde1e8}
tr.grp th{text-align:center;background:#fff;border-bottom:none;text-transform:uppercase;letter-spacing:.04em;font-size:11px}
.tot{padding:8px 14px;border-bottom:1px solid #dde1e8;color:#1d2330;font-variant-numeric:tabular-nums}
.ewarn{color:#b06f00;font-weight:600}.ebad{color:#d64545;font-weight:700}
</style></head><body>
<h1>healthready status</h1>
<div class="sub">{{if .Ready}}<span class="badge ok">READY</span>{{else}}<span class="badge bad">NOT READY</span>{{end}}
 &nbsp;{{len .Pools}} pool(s), refreshed every 3 s</div>
{{range .Pools}}<div class="pool">
<div class="head"><h2>{{.Name}}</h2>
{{if .Ready}}<span class="badge ok">ready {{.Routable}}/{{.Total}}</span>{{else}}<span class="badge bad">not ready {{.Routable}}/{{.Total}}</span>{{end}}
{{if .FailOpen}}<span class="badge warn">FAIL-OPEN (min_ready {{.MinReady}})</span>{{end}}
{{with .Cluster}}{{if eq .Quorum "ok"}}<span class="badge ok">{{.Gate}} quorum ok</span>{{else if eq .Quorum "lost"}}<span class="badge bad">{{.Gate}} quorum LOST</span>{{else}}<span class="badge unk">{{.Gate}} quorum unknown</span>{{end}}{{end}}
<span class="sub" style="margin:0">{{.Probe.Method}} {{.Probe.Scheme}}://…{{.Probe.Path}} every {{.Probe.IntervalMS}} ms, rise {{.Probe.Rise}} fall {{.Probe.Fall}}</span>
</div>
<div class="tot">{{with .Traffic}}<b>{{rate .ReqPerSec}}</b> req/s · <b class="{{errClass .ErrorPct}}">{{pct .ErrorPct}}</b> errors · p50 <b>{{lat .P50MS}}</b> · p99 <b>{{lat .P99MS}}</b> · <b>{{.InFlight}}</b> in flight · in <b>{{bytes .BytesInPerSec}}</b> · out <b>{{bytes .BytesOutPerSec}}</b>{{if .Holding}} <span class="badge bad">{{.Holding}} HOLDING</span>{{end}}{{end}} <span class="small">last minute</span></div>
<div class="wrap"><table>
<tr class="grp"><th colspan="3"></th><th colspan="7" class="g">traffic, last minute</th><th colspan="6" class="g">health</th></tr>
<tr><th>node</th><th>state</th><th>since</th><th class="n g">req/s</th><th class="n">errors</th><th class="n">p50</th><th class="n">p99</th><th class="n">in flight</th><th class="n">in/s</th><th class="n">out/s</th><th class="n g" title="consecutive good / failed probes">probes ok / fail</th><th>last status</th><th class="n">probe</th><th class="n" title="failed attempts within passive_window">passive</th><th class="n" title="Caddy's own fail count / requests in flight to the address, all sites">caddy fails / in flight</th><th class="n" title="probes answered with X-Minio-Server-Status">offline answers</th></tr>
{{range .Nodes}}<tr class="{{.State}}"><td class="mono">{{.Upstream}}{{if ne .Probe .Upstream}}<div class="small">probe {{.Probe}}</div>{{end}}</td>
<td class="st">{{with badge .}}<span class="badge {{.Class}}">{{.Label}}</span>{{end}}{{if and .Reason (ne .State "ready")}}<div class="small reason">{{.Reason}}</div>{{end}}</td>
<td>{{ago .Since}}</td>
{{with .Traffic}}<td class="n g">{{rate .ReqPerSec}}</td><td class="n {{errClass .ErrorPct}}">{{pct .ErrorPct}}{{if .Retried}}<div class="small">{{.Retried}} retried</div>{{end}}</td><td class="n">{{lat .P50MS}}</td><td class="n">{{lat .P99MS}}</td><td class="n">{{.InFlight}}</td><td class="n">{{bytes .BytesInPerSec}}</td><td class="n">{{bytes .BytesOutPerSec}}</td>{{end}}
<td class="n g">{{.ConsecutivePasses}}/{{.ConsecutiveFails}}</td>
<td>{{if .LastStatus}}{{.LastStatus}}{{else}}-{{end}}{{if .LastServerStatus}} <span class="badge warn">{{.LastServerStatus}}</span>{{end}}</td>
<td class="n">{{ms .LastLatencyMS}}</td><td class="n">{{.PassiveFailures}}</td><td class="n">{{.CaddyFails}}/{{.InFlight}}</td><td class="n">{{.OfflineAnswers}}</td></tr>
{{end}}</table></div></div>
{{else}}<p>No healthready pools.</p>{{end}}
</body></html>
`))

func renderHTML(w io.Writer, views []PoolView) error {
	return htmlPage.Execute(w, statusDoc{Ready: allReady(views), Pools: views})
}
