package loadbench

import (
	"fmt"
	"strings"
	"time"
)

// Target thresholds of the brief.
const (
	minThroughputVsStock = 0.97
	maxP99VsStock        = 1.05
)

func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func (r *Report) median(w string, k Kind) (Result, bool) {
	c := r.Cell(w, k)
	if c == nil || len(c.Runs) == 0 {
		return Result{}, false
	}
	return MedianResult(c.Runs), true
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	o := r.Opts
	fmt.Fprintf(&b, "# Load harness results (%s)\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `%s`  \n", o.Command)
	fmt.Fprintf(&b, "Run: %d repetitions x %s per cell (at most %d requests per cell), interleaved; medians shown. Took %s.\n\n",
		o.Repeat, o.Duration, o.MaxRequests, r.Took.Round(time.Second))
	b.WriteString("Machine:\n\n")
	for _, m := range r.Machine {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	b.WriteString("\n")
	if len(r.Skipped) > 0 {
		b.WriteString("Targets not run:\n\n")
		for _, k := range o.Kinds {
			if why := r.Skipped[k]; why != "" {
				fmt.Fprintf(&b, "- %s: %s\n", k.Label(), oneLine(why))
			}
		}
		b.WriteString("\n")
	}

	b.WriteString("## Hash quality (6 nodes)\n\n")
	b.WriteString("| policy | max/mean | min/mean | keys moved when 1 of 6 nodes is removed | ideal | moved although their node stayed |\n|---|---|---|---|---|---|\n")
	for _, h := range r.Hash {
		if h.Err != "" {
			fmt.Fprintf(&b, "| %s | not measured: %s | | | | |\n", h.Policy, oneLine(h.Err))
			continue
		}
		fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.2f%% | %.2f%% | %.2f%% |\n", h.Policy, h.Q.MaxOverMean, h.Q.MinOverMean,
			100*h.Q.Moved, 100*h.Q.Ideal, 100*h.Q.Collateral)
	}
	if len(r.Hash) > 0 {
		fmt.Fprintf(&b, "\n%d session ids; movement is the mean over removing each of the 6 nodes in turn.\n\n", r.Hash[0].Q.Keys)
	}

	b.WriteString("## Throughput, latency, CPU, memory\n\n")
	b.WriteString("CPU is the proxy's user+system time (all its processes) per 10,000 successful requests; RSS is the proxy's VmRSS after the cell. " +
		"Ratios: req/s against direct and against stock Caddy (b); p99 and CPU against stock Caddy.\n\n")
	b.WriteString("| workload | conns | target | req/s | p50 | p99 | CPU s/10k | RSS MiB | req/s vs direct | req/s vs (b) | p99 vs (b) | CPU vs (b) | errors |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range []string{WFastGet1K, WFastGet1M, WFastPut1M, WS3Get1M, WS3Put1M, WS3MP} {
		direct, hasDirect := r.median(w, KindDirect)
		stock, hasStock := r.median(w, KindCaddy)
		for _, k := range o.Kinds {
			c := r.Cell(w, k)
			if c == nil {
				continue
			}
			m, _ := r.median(w, k)
			cpu, rss := "-", "-"
			if v := m.CPUPer10k(); v >= 0 {
				cpu = fmt.Sprintf("%.2f", v)
			}
			if m.RSSBytes >= 0 {
				rss = fmt.Sprintf("%.0f", float64(m.RSSBytes)/(1<<20))
			}
			vsDirect, vsStock, p99Stock, cpuStock := "-", "-", "-", "-"
			if hasDirect {
				vsDirect = ratio(m.RPS(), direct.RPS())
			}
			if hasStock {
				vsStock = ratio(m.RPS(), stock.RPS())
				p99Stock = ratio(float64(m.P99), float64(stock.P99))
				cpuStock = ratio(m.CPUPer10k(), stock.CPUPer10k())
			}
			errs := fmt.Sprintf("%d/%d", m.Errors, m.Requests)
			if m.ErrSample != "" {
				errs += " (" + oneLine(truncate(m.ErrSample, 80)) + ")"
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", w, c.Conc, k, m.RPS(),
				fmtDur(m.P50), fmtDur(m.P99), cpu, rss, vsDirect, vsStock, p99Stock, cpuStock, errs)
		}
	}
	b.WriteString("\nMinIO multipart: one request = one whole upload (create, a 5 MiB and a 1 MiB part, complete).\n\n")

	if hasHeavy := r.heavyRows(&b); hasHeavy {
		b.WriteString("\n")
	}

	if len(r.Peak) > 0 {
		b.WriteString("Peak memory of each proxy over the whole run (VmHWM, all its processes):\n\n| target | VmHWM MiB | VmRSS at end MiB |\n|---|---|---|\n")
		for _, k := range o.Kinds {
			if u, ok := r.Peak[k]; ok {
				fmt.Fprintf(&b, "| %s | %.0f | %.0f |\n", k, float64(u.HWM)/(1<<20), float64(u.RSS)/(1<<20))
			}
		}
		b.WriteString("\n")
	}

	r.faultRows(&b)

	if len(r.Failover) > 0 {
		f := o.Failover
		fmt.Fprintf(&b, "## Failover timeline\n\n%d requests/s of 1 KiB (4 GET : 1 PUT) with %d session ids for %s over 4 fast backends; backend 1 is killed at t=%s (listener closed, open connections reset, "+
			"new connections reset after their request line is read and counted) and restarted at t=%s.\n\n",
			f.Rate, f.Sessions, f.Duration, f.KillAt, f.RestartAt)
		b.WriteString("| target | requests | client errors | requests sent to the dead node | last one after the kill | first request after the restart | errors per second (t=0..) |\n|---|---|---|---|---|---|---|\n")
		for _, fr := range r.Failover {
			if fr.Err != "" && fr.Requests == 0 {
				fmt.Fprintf(&b, "| %s | not run: %s | | | | | |\n", fr.Kind, oneLine(truncate(fr.Err, 200)))
				continue
			}
			last := "none"
			if fr.LastHit >= 0 {
				last = "+" + fmtDur(fr.LastHit)
			}
			back := "not within the run"
			if fr.BackAfter >= 0 {
				back = "+" + fmtDur(fr.BackAfter)
			}
			errs := fmt.Sprint(fr.Errors)
			if fr.Dropped > 0 {
				errs += fmt.Sprintf(" (+%d not sent: 512 in flight)", fr.Dropped)
			}
			if fr.ErrSample != "" {
				errs += " (" + oneLine(truncate(fr.ErrSample, 60)) + ")"
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %d | %s | %s | %s |\n", fr.Kind, fr.Requests, errs, fr.KilledHits, last, back, sparkline(fr.ErrPerSec))
		}
		b.WriteString("\n")
	}

	b.WriteString("## Targets\n\n")
	for _, t := range r.Targets() {
		fmt.Fprintf(&b, "- %s\n", t)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", oneLine(truncate(n, 400)))
		}
	}
	return b.String()
}

func sparkline(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, " ")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", "/")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Targets evaluates the brief's goals: PASS or MISS, with the numbers.
func (r *Report) Targets() []string {
	var out []string
	if why := r.Skipped[KindOurs]; why != "" {
		return []string{"MISS (not measured): ours did not run: " + oneLine(why)}
	}
	// 1. ours vs stock Caddy on every workload both ran.
	for _, w := range []string{WFastGet1K, WFastGet1M, WFastPut1M, WS3Get1M, WS3Put1M, WS3MP} {
		ours, ok1 := r.median(w, KindOurs)
		stock, ok2 := r.median(w, KindCaddy)
		if !ok1 || !ok2 {
			continue
		}
		tp := ours.RPS() / stock.RPS()
		p99 := float64(ours.P99) / float64(stock.P99)
		verdict := "PASS"
		var why []string
		if !(tp >= minThroughputVsStock) {
			verdict = "MISS"
			why = append(why, fmt.Sprintf("throughput %.2fx < %.2fx", tp, minThroughputVsStock))
		}
		if !(p99 <= maxP99VsStock) {
			verdict = "MISS"
			why = append(why, fmt.Sprintf("p99 %.2fx > %.2fx", p99, maxP99VsStock))
		}
		if ours.Errors > 0 {
			verdict = "MISS"
			why = append(why, fmt.Sprintf("%d errors", ours.Errors))
		}
		reason := fmt.Sprintf("throughput %.2fx of stock Caddy (%.0f vs %.0f req/s), p99 %.2fx (%s vs %s)", tp, ours.RPS(), stock.RPS(), p99, fmtDur(ours.P99), fmtDur(stock.P99))
		if len(why) > 0 {
			reason += "; " + strings.Join(why, ", ")
		}
		out = append(out, fmt.Sprintf("%s: %s: ours >= %.2fx stock Caddy throughput and p99 <= %.2fx: %s", verdict, w, minThroughputVsStock, maxP99VsStock, reason))
	}
	// 1b. The heavy client spreads: no node above 1.5x the mean share.
	if c := r.Cell(WHeavy, KindOurs); c != nil && len(c.NodeBytes) > 0 {
		sh := c.NodeShares()
		verdict := "PASS"
		if sh.MaxOverMean > maxHeavyShare {
			verdict = "MISS"
		}
		out = append(out, fmt.Sprintf("%s: %s: ours spreads one heavy client, no node above %.1fx the mean share: %s", verdict, WHeavy, maxHeavyShare, sh))
	}
	// 2. MinIO 1 MiB objects: ours at least nginx.
	for _, w := range []string{WS3Get1M, WS3Put1M} {
		ours, ok1 := r.median(w, KindOurs)
		ngx, ok2 := r.median(w, KindNginx)
		if !ok1 || !ok2 {
			out = append(out, fmt.Sprintf("MISS (not measured): %s: ours vs nginx: a side did not run", w))
			continue
		}
		verdict := "PASS"
		if ours.RPS() < ngx.RPS() {
			verdict = "MISS"
		}
		out = append(out, fmt.Sprintf("%s: %s: ours >= nginx throughput: %.0f vs %.0f req/s (%.2fx)", verdict, w, ours.RPS(), ngx.RPS(), ours.RPS()/ngx.RPS()))
	}
	// 3. Failover: fewer client errors than every peer.
	var ours *FailoverResult
	for i := range r.Failover {
		if r.Failover[i].Kind == KindOurs {
			ours = &r.Failover[i]
		}
	}
	if ours == nil || (ours.Err != "" && ours.Requests == 0) {
		out = append(out, "MISS (not measured): failover: ours did not run")
		return out
	}
	verdict := "PASS"
	var cmp []string
	for _, fr := range r.Failover {
		if fr.Kind == KindOurs {
			continue
		}
		if fr.Err != "" && fr.Requests == 0 {
			cmp = append(cmp, fmt.Sprintf("%s not run", fr.Kind))
			continue
		}
		peerErrs := fr.Errors + fr.Dropped
		cmp = append(cmp, fmt.Sprintf("%s %d", fr.Kind, peerErrs))
		if ours.Errors+ours.Dropped >= peerErrs {
			verdict = "MISS"
		}
	}
	out = append(out, fmt.Sprintf("%s: failover: ours has fewer client errors than every peer: ours %d vs %s", verdict, ours.Errors+ours.Dropped, strings.Join(cmp, ", ")))
	return out
}

// maxHeavyShare is the brief's bound on the busiest node's share of the
// heavy client's traffic, as a multiple of the mean.
const maxHeavyShare = 1.5

// heavyRows writes the heavy-client table; false when the cell did not run.
func (r *Report) heavyRows(b *strings.Builder) bool {
	var rows []*Cell
	for _, k := range r.Opts.Kinds {
		if c := r.Cell(WHeavy, k); c != nil && len(c.Runs) > 0 {
			rows = append(rows, c)
		}
	}
	if len(rows) == 0 {
		return false
	}
	fmt.Fprintf(b, "## Heavy client\n\nOne client host, one User-Agent, %d connections, GET:PUT 3:1 of %d MiB objects (presigned, no sessionid): "+
		"MinIO's benchmark tool against the original cluster. Each of the 4 nodes (fast backends, so that the links bind, not MinIO's CPU on this "+
		"machine; test/spread measures real MinIO) is behind a faultproxy link capped at %d MiB/s each way (its NIC); direct is one node through "+
		"its link. Shares are the bytes each node's link carried.\n\n",
		HeavyConns, HeavyObjectSize>>20, r.Opts.HeavyBW>>20)
	b.WriteString("| target | MiB/s | vs (b) | p50 | p99 | share per node | busiest node vs mean | errors |\n|---|---|---|---|---|---|---|---|\n")
	stock, hasStock := r.median(WHeavy, KindCaddy)
	for _, c := range rows {
		m, _ := r.median(WHeavy, c.Kind)
		mibps := float64(m.Bytes) / m.Elapsed.Seconds() / (1 << 20)
		vs := "-"
		if hasStock {
			vs = ratio(mibps, float64(stock.Bytes)/stock.Elapsed.Seconds()/(1<<20))
		}
		sh := c.NodeShares()
		busiest := fmt.Sprintf("%.2fx", sh.MaxOverMean)
		if c.Kind == KindDirect {
			busiest = "- (one node)"
		}
		fmt.Fprintf(b, "| %s | %.1f | %s | %s | %s | %s | %s | %d/%d |\n", c.Kind, mibps, vs, fmtDur(m.P50), fmtDur(m.P99),
			sh.String(), busiest, m.Errors, m.Requests)
	}
	return true
}
