package caddyfile

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// codeLines drops comments (whole-line and trailing " # ...") and blank
// lines, keeping indentation.
func codeLines(text string) []string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, " # "); i >= 0 {
			l = l[:i]
		}
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, strings.TrimRight(l, " \t"))
	}
	return out
}

// TestDocsQuoteTheExample: the global block and both site blocks quoted in
// README.md are the ones in examples/Caddyfile (comments aside), so
// the documentation cannot drift from the file the tests run.
func TestDocsQuoteTheExample(t *testing.T) {
	doc := string(readFile(t, filepath.Join(repoRoot(t), "README.md")))
	// Only the Configuration section quotes the example; other sections
	// have small illustrative sites of their own.
	start, end := strings.Index(doc, "\n## Configuration\n"), strings.Index(doc, "\n## High availability\n")
	require.True(t, start >= 0 && end > start, "README.md has no Configuration section before High availability")
	doc = doc[start:end]
	example := strings.Join(codeLines(string(readFile(t, filepath.Join(repoRoot(t), "examples", "Caddyfile")))), "\n")
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(doc, -1)
	quoted := 0
	for _, b := range blocks {
		body := b[1]
		if !strings.HasPrefix(body, "{\n") && !strings.HasPrefix(body, "http://") {
			continue // syntax reference, not a quote
		}
		quoted++
		require.Contains(t, example, strings.Join(codeLines(body), "\n"), "README.md quotes a block that is not in examples/Caddyfile:\n%s", body)
	}
	require.Equal(t, 3, quoted, "the global block and the two sites")
}
