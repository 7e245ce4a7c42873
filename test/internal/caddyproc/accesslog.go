package caddyproc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// AccessEntry is one line of Caddy's JSON access log. Fields is the whole
// line, for keys added with log_append (e.g. "upstream", "affinity_source").
type AccessEntry struct {
	Level    string  `json:"level"`
	Logger   string  `json:"logger"`
	Msg      string  `json:"msg"`
	Status   int     `json:"status"`
	Size     int64   `json:"size"`
	Duration float64 `json:"duration"`
	Request  struct {
		RemoteIP string              `json:"remote_ip"`
		ClientIP string              `json:"client_ip"`
		Proto    string              `json:"proto"`
		Method   string              `json:"method"`
		Host     string              `json:"host"`
		URI      string              `json:"uri"`
		Headers  map[string][]string `json:"headers"`
	} `json:"request"`
	RespHeaders map[string][]string `json:"resp_headers"`
	Fields      map[string]any      `json:"-"`
}

// String returns a log_append field as text ("" when absent).
func (e AccessEntry) String(key string) string {
	v, ok := e.Fields[key]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// ParseAccessLog reads the access log entries (logger http.log.access*)
// from a stream of JSON lines; other lines are skipped.
func ParseAccessLog(r io.Reader) ([]AccessEntry, error) {
	var out []AccessEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e AccessEntry
		if err := json.Unmarshal(line, &e); err != nil {
			continue // a half-written last line
		}
		if !strings.HasPrefix(e.Logger, "http.log.access") {
			continue
		}
		if err := json.Unmarshal(line, &e.Fields); err != nil {
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// ReadAccessLog parses the access log entries of a file.
func ReadAccessLog(path string) ([]AccessEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseAccessLog(f)
}

// AccessLog returns the access log entries written to stdout so far.
func (c *Caddy) AccessLog() ([]AccessEntry, error) { return ReadAccessLog(c.StdoutPath()) }

// WaitAccessLog waits until an entry matching match is logged (Caddy writes
// the line after the response, so a client may be faster than the log).
func (c *Caddy) WaitAccessLog(ctx context.Context, match func(AccessEntry) bool) (AccessEntry, error) {
	for {
		es, err := c.AccessLog()
		if err == nil {
			for _, e := range es {
				if match(e) {
					return e, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return AccessEntry{}, fmt.Errorf("caddyproc: no matching access log entry in %s (%d entries): %w", c.StdoutPath(), len(es), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tail returns the last lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
