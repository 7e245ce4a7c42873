package caddyfile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// grafanaDashboard is the part of examples/grafana/caddy-minio-lb.json the
// structural test reads.
type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	Repeat  string `json:"repeat"`
	GridPos struct {
		X int `json:"x"`
		Y int `json:"y"`
		W int `json:"w"`
		H int `json:"h"`
	} `json:"gridPos"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr       string `json:"expr"`
		RefID      string `json:"refId"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
}

// TestGrafanaDashboard: the dashboard imports into any Grafana with a
// Prometheus data source (chosen by its datasource variable), has a row
// repeated per pool whose panels all select that pool, shows what issue
// 13 asks for (node states, request rate and error ratio per node and per
// operation, a latency heatmap and percentiles, retries, ejections,
// fail-open), and its panels do not overlap. That each metric it names is
// exported is checked against a running Caddy in test/examples.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "grafana", "caddy-minio-lb.json"))
	require.NoError(t, err)
	var d grafanaDashboard
	require.NoError(t, json.Unmarshal(b, &d))
	assert.Equal(t, "caddy-minio-lb", d.UID)

	vars := make(map[string]string)
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	assert.Equal(t, map[string]string{"datasource": "datasource", "instance": "query", "pool": "query"}, vars)

	ids := make(map[int]bool)
	var all []string
	inPoolRow := false
	poolRows := 0
	type rect struct{ x, y, w, h int }
	var rects []rect
	for _, p := range d.Panels {
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		g := p.GridPos
		require.True(t, g.X >= 0 && g.W > 0 && g.X+g.W <= 24 && g.H > 0, "panel %q: gridPos %+v", p.Title, g)
		for _, r := range rects {
			overlap := g.X < r.x+r.w && r.x < g.X+g.W && g.Y < r.y+r.h && r.y < g.Y+g.H
			require.False(t, overlap, "panel %q overlaps another", p.Title)
		}
		rects = append(rects, rect{g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			inPoolRow = p.Repeat == "pool"
			if inPoolRow {
				poolRows++
				assert.Contains(t, p.Title, "$pool")
			}
			continue
		}
		require.NotNil(t, p.Datasource, "panel %q has no datasource", p.Title)
		assert.Equal(t, "${datasource}", p.Datasource.UID, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			require.NotEmpty(t, tg.Expr, "panel %q: empty query", p.Title)
			require.NotEmpty(t, tg.RefID, "panel %q", p.Title)
			require.NotNil(t, tg.Datasource, "panel %q", p.Title)
			assert.Equal(t, "${datasource}", tg.Datasource.UID, "panel %q", p.Title)
			assert.Contains(t, tg.Expr, `instance=~"$instance"`, "panel %q follows the proxy selection", p.Title)
			if inPoolRow {
				// every selector of the expression is limited to the row's pool
				assert.Equal(t, strings.Count(tg.Expr, "caddy_minio_lb_"), strings.Count(tg.Expr, `pool="$pool"`),
					"panel %q in the pool row: every selector needs pool=\"$pool\": %s", p.Title, tg.Expr)
			}
			all = append(all, p.Type+": "+tg.Expr)
		}
	}
	assert.Equal(t, 1, poolRows, "one row, repeated per pool")

	has := func(what string, ok func(s string) bool) {
		for _, s := range all {
			if ok(s) {
				return
			}
		}
		t.Errorf("the dashboard shows no %s", what)
	}
	has("node states over time", func(s string) bool {
		return strings.HasPrefix(s, "state-timeline:") && strings.Contains(s, "caddy_minio_lb_node_state")
	})
	has("request rate per node", func(s string) bool {
		return strings.Contains(s, "by (node) (rate(caddy_minio_lb_requests_total")
	})
	has("request rate per operation", func(s string) bool {
		return strings.Contains(s, "by (op) (rate(caddy_minio_lb_requests_total")
	})
	has("error ratio per node", func(s string) bool {
		return strings.Contains(s, `status=~"5xx|none"`) && strings.Contains(s, "by (node)")
	})
	has("error ratio per operation", func(s string) bool {
		return strings.Contains(s, `status=~"5xx|none"`) && strings.Contains(s, "by (op")
	})
	has("latency heatmap", func(s string) bool {
		return strings.HasPrefix(s, "heatmap:") && strings.Contains(s, "caddy_minio_lb_first_byte_seconds_bucket")
	})
	has("latency percentiles", func(s string) bool {
		return strings.Contains(s, "histogram_quantile(0.99") && strings.Contains(s, "caddy_minio_lb_first_byte_seconds_bucket")
	})
	has("retries", func(s string) bool { return strings.Contains(s, "caddy_minio_lb_retries_total") })
	has("ejections", func(s string) bool { return strings.Contains(s, "caddy_minio_lb_passive_ejections_total") })
	has("fail-open", func(s string) bool { return strings.Contains(s, "caddy_minio_lb_fail_open") })
}
