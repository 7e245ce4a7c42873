package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"math"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// logEntry is one line of Caddy's JSON access log with the fields
// examples/Caddyfile appends (log_append upstream, affinity_source,
// affinity_key).
type logEntry struct {
	Logger  string  `json:"logger"`
	TS      float64 `json:"ts"`
	Request struct {
		Method  string              `json:"method"`
		Host    string              `json:"host"`
		URI     string              `json:"uri"`
		Headers map[string][]string `json:"headers"`
	} `json:"request"`
	Duration       float64 `json:"duration"` // seconds
	Status         int     `json:"status"`
	Upstream       string  `json:"upstream"`
	AffinitySource string  `json:"affinity_source"`
	AffinityKey    string  `json:"affinity_key"`
	// Retries is how many attempts failed before the logged one: a retried
	// request ends on the next node of its key's order, not on its home.
	Retries int `json:"retries"`
	// UpstreamDurationMs is set once Caddy got a response from an
	// upstream; nil when every attempt failed at the transport level
	// (refused, reset, EOF).
	UpstreamDurationMs *float64 `json:"upstream_duration_ms"`
	// HedgedNode is set when the minio transport hedged the read to a
	// second node; the answer then comes from whichever node answered
	// first, by design, so such a request says nothing about where its
	// key lives.
	HedgedNode string `json:"hedged_node"`
	// FirstNode is the node of the request's first attempt (set by the
	// minio transport).
	FirstNode string `json:"first_node"`
	// AvoidedNode is set when the minio transport moved a read off a node
	// that answered reads slowly (slow_factor): by design it says nothing
	// about where its key lives either.
	AvoidedNode string `json:"avoided_node"`
	// RetriedNodes, Attempts, Outcome and HoldMs are the minio transport's
	// account of the request (docs/observability.md, Access log
	// placeholders): what a failure message needs to say why it failed.
	RetriedNodes string  `json:"retried_nodes"`
	Attempts     int     `json:"attempts"`
	Outcome      string  `json:"outcome"`
	HoldMs       float64 `json:"hold_ms"`
}

// Answered reports whether an upstream answered the request (a status
// line came back), as opposed to Caddy's own 502 for a transport failure.
func (e logEntry) Answered() bool { return e.UpstreamDurationMs != nil }

// End is when Caddy logged the request (its end); Start is End - duration.
func (e logEntry) End() time.Time {
	sec, frac := math.Modf(e.TS)
	return time.Unix(int64(sec), int64(frac*1e9))
}

func (e logEntry) Start() time.Time {
	return e.End().Add(-time.Duration(e.Duration * float64(time.Second)))
}

// Query returns the parsed query of the request URI.
func (e logEntry) Query() url.Values {
	_, q, _ := strings.Cut(e.Request.URI, "?")
	v, _ := url.ParseQuery(q)
	return v
}

// Path is the URI without the query.
func (e logEntry) Path() string {
	p, _, _ := strings.Cut(e.Request.URI, "?")
	return p
}

// UserAgent is the logged User-Agent header.
func (e logEntry) UserAgent() string {
	if v := e.Request.Headers["User-Agent"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// RequestID is the id the test's client stamped on the request
// (requestIDHeader), "" if none.
func (e logEntry) RequestID() string {
	if v := e.Request.Headers[requestIDHeader]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// SessionID is the sessionid (any case) query parameter, "" if none.
func (e logEntry) SessionID() string {
	for k, v := range e.Query() {
		if strings.EqualFold(k, "sessionid") && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// readAccessLog parses the access log from byte offset from; lines that are
// not access log entries (no request) are dropped.
func readAccessLog(tb testing.TB, path string, from int64) []logEntry {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatalf("access log: %v", err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		tb.Fatalf("access log: %v", err)
	}
	var out []logEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Request.Method == "" {
			continue // a partly written last line, or not an access entry
		}
		out = append(out, e)
	}
	return out
}

// byRequestID indexes entries by RequestID (entries without one are left
// out). A request the load client resent carries one id on every attempt, so
// an id can have more than one entry.
func byRequestID(es []logEntry) map[string][]logEntry {
	m := map[string][]logEntry{}
	for _, e := range es {
		if id := e.RequestID(); id != "" {
			m[id] = append(m[id], e)
		}
	}
	return m
}

// waitLog waits until the access log from offset from satisfies done, and
// returns its entries from that offset. Caddy writes a request's line after
// the response has gone out, so a client that just got its answer can be
// ahead of the log. Past timeout it returns what is there: the caller's
// assertions then say what is missing.
func (p *caddyProc) waitLog(tb testing.TB, from int64, timeout time.Duration, done func([]logEntry) bool) []logEntry {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		es := readAccessLog(tb, p.AccessLog, from)
		if done(es) || time.Now().After(deadline) {
			return es
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLogged waits until the access log from offset from has a line for
// every request id in ids (see requestIDHeader) and returns its entries
// from that offset. Every request of the S3 and console sites is logged
// (only /upstream/health/* is log_skip), so an id still missing after
// timeout fails the test.
func (p *caddyProc) waitLogged(tb testing.TB, from int64, ids []string, timeout time.Duration) []logEntry {
	tb.Helper()
	var missing []string
	es := p.waitLog(tb, from, timeout, func(es []logEntry) bool {
		logged := byRequestID(es)
		missing = missing[:0]
		for _, id := range ids {
			if len(logged[id]) == 0 {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	})
	if len(missing) > 0 {
		tb.Errorf("%d of %d requests answered to the client have no access log line within %s (ids %v...)",
			len(missing), len(ids), timeout, missing[:min(5, len(missing))])
	}
	return es
}

// filter returns the entries for which keep is true.
func filter(es []logEntry, keep func(logEntry) bool) []logEntry {
	var out []logEntry
	for _, e := range es {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// upstreams returns the set of upstreams of the entries, with counts.
func upstreams(es []logEntry) map[string]int {
	m := map[string]int{}
	for _, e := range es {
		m[e.Upstream]++
	}
	return m
}
