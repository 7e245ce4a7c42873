package traffic

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocsListEverything: docs/observability.md names every metric, label
// value and placeholder this package defines, so none ships undocumented.
func TestDocsListEverything(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "observability.md"))
	require.NoError(t, err)
	doc := string(b)
	for _, name := range MetricNames() {
		assert.Contains(t, doc, "`"+name+"`", "metric")
	}
	for _, p := range Placeholders() {
		assert.Contains(t, doc, "`{"+p+"}`", "placeholder")
	}
	for _, op := range s3op.All() {
		assert.Contains(t, doc, "`"+op.String()+"`", "op label value")
	}
	for _, v := range statusNames {
		assert.Contains(t, doc, "`"+v+"`", "status label value")
	}
	for _, v := range outcomeNames {
		assert.Contains(t, doc, "`"+v+"`", "outcome label value")
	}
	for _, v := range []string{"won", "lost", "served", "expired", "cancelled", "rejected", "busy", "shutdown", OverflowName} {
		assert.Contains(t, doc, "`"+v+"`")
	}
}
