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

// renderText is the plain text page:
//
//	Upstream s3 (ready 4/4, min_ready 1)
//	    Primary Peers
//	        127.0.0.1:9101 UP
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
			b.WriteString("\n")
		}
		b.WriteString("    Backup Peers\n")
	}
	return b.String()
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
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eef0f4;white-space:nowrap}
.wrap{overflow-x:auto}
.small{font-size:12px;color:#5b6475}
th{font-size:12px;color:#5b6475;font-weight:600;background:#fafbfc}
td.mono{font-family:ui-monospace,monospace}
td.reason{white-space:normal;color:#5b6475;min-width:240px;width:100%}
tr.ready td:first-child{border-left:4px solid #1f9d55}
tr.not_ready td:first-child,tr.ejected td:first-child{border-left:4px solid #d64545}
tr.unknown td:first-child{border-left:4px solid #7a8394}
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
<div class="wrap"><table><tr><th>node</th><th>state</th><th>since</th><th>passes</th><th>fails</th><th>last status</th><th>latency</th><th>in flight</th><th>passive</th><th>caddy fails</th><th>offline answers</th><th>reason</th></tr>
{{range .Nodes}}<tr class="{{.State}}"><td class="mono">{{.Upstream}}{{if ne .Probe .Upstream}}<div class="small">probe {{.Probe}}</div>{{end}}</td>
<td>{{with badge .}}<span class="badge {{.Class}}">{{.Label}}</span>{{end}}</td>
<td>{{ago .Since}}</td><td>{{.ConsecutivePasses}}</td><td>{{.ConsecutiveFails}}</td>
<td>{{if .LastStatus}}{{.LastStatus}}{{else}}-{{end}}{{if .LastServerStatus}} <span class="badge warn">{{.LastServerStatus}}</span>{{end}}</td>
<td>{{ms .LastLatencyMS}}</td><td>{{.InFlight}}</td><td>{{.PassiveFailures}}</td><td>{{.CaddyFails}}</td><td>{{.OfflineAnswers}}</td>
<td class="reason">{{.Reason}}</td></tr>
{{end}}</table></div></div>
{{else}}<p>No healthready pools.</p>{{end}}
</body></html>
`))

func renderHTML(w io.Writer, views []PoolView) error {
	return htmlPage.Execute(w, statusDoc{Ready: allReady(views), Pools: views})
}
