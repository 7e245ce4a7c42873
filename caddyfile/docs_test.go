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

// fencedBlocks returns the bodies of the fenced code blocks of a Markdown
// text whose info string is lang.
func fencedBlocks(doc, lang string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?s)```"+regexp.QuoteMeta(lang)+"\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestDocsQuoteTheExample: the global block and both site blocks quoted in
// docs/configuration.md are the ones in examples/Caddyfile (comments
// aside), so the documentation cannot drift from the file the tests run.
func TestDocsQuoteTheExample(t *testing.T) {
	doc := string(readFile(t, filepath.Join(repoRoot(t), "docs", "configuration.md")))
	example := strings.Join(codeLines(string(readFile(t, filepath.Join(repoRoot(t), "examples", "Caddyfile")))), "\n")
	quoted := 0
	for _, body := range fencedBlocks(doc, "caddyfile") {
		if !strings.HasPrefix(body, "{\n") && !strings.HasPrefix(body, "http://") {
			continue // syntax reference, not a quote
		}
		quoted++
		require.Contains(t, example, strings.Join(codeLines(body), "\n"), "docs/configuration.md quotes a block that is not in examples/Caddyfile:\n%s", body)
	}
	require.Equal(t, 3, quoted, "the global block and the two sites")
}

// TestReadmeCaddyfileAdapts: the minimal Caddyfile of README.md adapts
// without warnings and loads.
func TestReadmeCaddyfileAdapts(t *testing.T) {
	doc := string(readFile(t, filepath.Join(repoRoot(t), "README.md")))
	blocks := fencedBlocks(doc, "caddyfile")
	require.NotEmpty(t, blocks, "README.md has no caddyfile block")
	validate(t, adapt(t, []byte(blocks[0]), "Caddyfile"))
}
