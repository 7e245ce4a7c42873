package caddyfile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/minio-lb/caddy-minio-lb/healthready"
	"github.com/minio-lb/caddy-minio-lb/miniotransport"
	"github.com/minio-lb/caddy-minio-lb/s3errors"
	"github.com/minio-lb/caddy-minio-lb/s3headers"
	"github.com/minio-lb/caddy-minio-lb/s3listuploads"
	"github.com/minio-lb/caddy-minio-lb/sessionaffinity"
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

// moduleDoc is a module's documentation page and where its options come
// from.
type moduleDoc struct {
	page string // under docs/
	// The module's Go types: every JSON field of each must be in an
	// options table of the page.
	types []reflect.Type
	// The package directory and receiver type of the UnmarshalCaddyfile
	// that parses the module's Caddyfile block.
	pkgDir, parser string
	// Caddyfile subdirectives whose name is not the JSON name of the field
	// they set, mapped to that JSON name.
	exceptions map[string]string
}

var moduleDocs = []moduleDoc{
	{
		page:   "healthready.md",
		types:  []reflect.Type{reflect.TypeFor[healthready.HealthReady]()},
		pkgDir: "healthready", parser: "HealthReady",
		exceptions: map[string]string{
			"to":     "upstreams", // and the arguments after `healthready`
			"header": "headers",   // one name and value per line
		},
	},
	{
		page:   "healthready_status.md",
		types:  []reflect.Type{reflect.TypeFor[healthready.StatusHandler]()},
		pkgDir: "healthready", parser: "StatusHandler",
	},
	{
		page: "session_affinity.md",
		types: []reflect.Type{
			reflect.TypeFor[sessionaffinity.SessionAffinitySelection](),
			reflect.TypeFor[sessionaffinity.Source](),
		},
		pkgDir: "sessionaffinity", parser: "SessionAffinitySelection",
		exceptions: map[string]string{
			// Each source subdirective adds one entry to `sources`, with
			// its name as `type`; names, scope and placeholders are its
			// arguments.
			"query":        "sources",
			"header":       "sources",
			"cookie":       "sources",
			"s3_multipart": "sources",
			"fingerprint":  "sources",
			"s3_object":    "sources",
			"weight":       "weights", // one address and weight per line
		},
	},
	{
		page:   "s3_header_case.md",
		types:  []reflect.Type{reflect.TypeFor[s3headers.HeaderCase]()},
		pkgDir: "s3headers", parser: "HeaderCase",
		exceptions: map[string]string{
			"prefix": "prefixes", // repeatable, the lists add up
		},
	},
	{
		page:   "minio-transport.md",
		types:  []reflect.Type{reflect.TypeFor[miniotransport.Transport]()},
		pkgDir: "miniotransport", parser: "Transport",
	},
	{
		page:   "s3_list_uploads.md",
		types:  []reflect.Type{reflect.TypeFor[s3listuploads.ListUploads]()},
		pkgDir: "s3listuploads", parser: "ListUploads",
	},
	{
		page:   "s3_errors.md",
		types:  []reflect.Type{reflect.TypeFor[s3errors.S3Errors]()},
		pkgDir: "s3errors", parser: "S3Errors",
	},
}

// jsonFields returns the JSON names of typ's exported fields, with the Go
// field name of each.
func jsonFields(typ reflect.Type) map[string]string {
	out := map[string]string{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() || f.Anonymous {
			// An embedded module's options are documented with it
			// (transport minio embeds Caddy's http transport).
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Name
	}
	return out
}

// parsePackage parses the non-test Go files of a package directory.
func parsePackage(t *testing.T, dir string) []*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(repoRoot(t), dir, "*.go"))
	require.NoError(t, err)
	fset := token.NewFileSet()
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		require.NoError(t, err)
		files = append(files, f)
	}
	require.NotEmpty(t, files, "no Go files in %s", dir)
	return files
}

// fieldDocs returns the doc comment of every field of the struct type
// typeName, by Go field name.
func fieldDocs(files []*ast.File, typeName string) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || ts.Name.Name != typeName {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			for _, field := range st.Fields.List {
				for _, name := range field.Names {
					out[name.Name] = field.Doc.Text()
				}
			}
			return false
		})
	}
	return out
}

// stringConsts returns the package's string constants by name.
func stringConsts(files []*ast.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						out[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
	}
	return out
}

// caddyfileNames reads the subdirective names that the UnmarshalCaddyfile
// method of recv accepts: the string cases of its switch statements and
// the strings it compares d.Val() with (nested blocks such as
// `case_sensitive` and `domains`).
func caddyfileNames(t *testing.T, files []*ast.File, recv string) []string {
	t.Helper()
	consts := stringConsts(files)
	str := func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			s, ok := consts[e.Name]
			return s, ok
		}
		return "", false
	}
	isVal := func(e ast.Expr) bool {
		call, ok := e.(*ast.CallExpr)
		if !ok {
			return false
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		return ok && sel.Sel.Name == "Val"
	}
	seen := map[string]bool{}
	found := false
	for _, f := range files {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Name.Name != "UnmarshalCaddyfile" || fd.Recv == nil || len(fd.Recv.List) != 1 {
				continue
			}
			typ := fd.Recv.List[0].Type
			if star, ok := typ.(*ast.StarExpr); ok {
				typ = star.X
			}
			if id, ok := typ.(*ast.Ident); !ok || id.Name != recv {
				continue
			}
			found = true
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CaseClause:
					for _, e := range n.List {
						if s, ok := str(e); ok {
							seen[s] = true
						}
					}
				case *ast.BinaryExpr:
					if n.Op != token.EQL && n.Op != token.NEQ {
						break
					}
					for _, pair := range [][2]ast.Expr{{n.X, n.Y}, {n.Y, n.X}} {
						if isVal(pair[0]) {
							if s, ok := str(pair[1]); ok {
								seen[s] = true
							}
						}
					}
				}
				return true
			})
		}
	}
	require.True(t, found, "no (*%s).UnmarshalCaddyfile", recv)
	names := make([]string, 0, len(seen))
	for s := range seen {
		names = append(names, s)
	}
	sort.Strings(names)
	return names
}

// Other ways the doc comments state a default: "Default false: ...",
// "`object` (default)", "(a positive integer, default 1)".
var (
	defaultBool   = regexp.MustCompile(`\bDefault (false|true)\b`)
	defaultMarked = regexp.MustCompile("`([^`]+)` \\(default\\)")
	defaultInline = regexp.MustCompile(`\bdefault ([^\s)]+)\)`)
)

// docDefault extracts the default a field's doc comment states.
func docDefault(doc string) (string, bool) {
	text := strings.Join(strings.Fields(doc), " ")
	if _, v, ok := strings.Cut(text, "Default: "); ok {
		if i := strings.Index(v, ". "); i >= 0 {
			v = v[:i]
		}
		return strings.TrimSuffix(v, "."), true
	}
	for _, re := range []*regexp.Regexp{defaultBool, defaultMarked, defaultInline} {
		if m := re.FindStringSubmatch(text); m != nil {
			return m[1], true
		}
	}
	return "", false
}

// defaultItems splits a stated default into the values a page must show:
// parenthetical remarks and code quotes dropped, lists split.
func defaultItems(v string) []string {
	v = regexp.MustCompile(`\s*\([^)]*\)`).ReplaceAllString(v, "")
	v = strings.TrimSpace(strings.ReplaceAll(v, "`", ""))
	var parts []string
	switch {
	case strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]"):
		parts = strings.Split(v[1:len(v)-1], ",")
	case strings.Contains(v, ", "):
		parts = strings.Split(v, ", ")
	default:
		parts = []string{v}
	}
	var out []string
	for _, p := range parts {
		if p = strings.Trim(strings.TrimSpace(p), `"`); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// codeName matches name written as code on a page: `name` or `name ...`.
func codeName(name string) *regexp.Regexp {
	return regexp.MustCompile("`" + regexp.QuoteMeta(name) + "[` ]")
}

// optionRow is a row of an options table: a Markdown table with a
// "default" column.
type optionRow struct {
	text, def string // the whole row; its default cell
}

// tableCells splits a Markdown table row into its cells; `\|` is a pipe
// inside a cell.
func tableCells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimSuffix(strings.TrimPrefix(row, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case row[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

// optionRows returns the rows of every table of page that has a "default"
// column.
func optionRows(page string) []optionRow {
	var out []optionRow
	col := -1
	lines := proseLines(page)
	for i, l := range lines {
		if !strings.HasPrefix(l, "|") {
			col = -1
			continue
		}
		if col < 0 {
			// a header row is followed by the |---| separator
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "|-") {
				col = slices.Index(tableCells(l), "default")
				if col < 0 {
					col = -2 // a table without a default column
				}
			}
			continue
		}
		if strings.HasPrefix(l, "|-") {
			continue
		}
		if cells := tableCells(l); col < len(cells) {
			out = append(out, optionRow{text: l, def: strings.ReplaceAll(cells[col], "`", "")})
		}
	}
	return out
}

// TestDocsListEveryOption: every JSON field and every Caddyfile
// subdirective of every module is in an options table (a table with a
// "default" column) of the module's page, and every default that the
// code's doc comments state (`Default: ...`) is in the default cell of
// the option's row.
func TestDocsListEveryOption(t *testing.T) {
	for _, m := range moduleDocs {
		t.Run(m.page, func(t *testing.T) {
			page := string(readFile(t, filepath.Join(repoRoot(t), "docs", m.page)))
			rows := optionRows(page)
			require.NotEmpty(t, rows, "docs/%s has no options table (a table with a default column)", m.page)
			rowsNaming := func(name string) []optionRow {
				re := codeName(name)
				var out []optionRow
				for _, r := range rows {
					if re.MatchString(r.text) {
						out = append(out, r)
					}
				}
				return out
			}
			files := parsePackage(t, m.pkgDir)

			jsonNames := map[string]bool{}
			for _, typ := range m.types {
				docs := fieldDocs(files, typ.Name())
				for name, goField := range jsonFields(typ) {
					jsonNames[name] = true
					named := rowsNaming(name)
					assert.NotEmpty(t, named, "%s.%s: JSON field %q is in no options table of docs/%s", typ.Name(), goField, name, m.page)

					def, ok := docDefault(docs[goField])
					if !ok {
						continue
					}
					items := defaultItems(def)
					found := false
					for _, r := range named {
						all := true
						for _, it := range items {
							all = all && strings.Contains(r.def, it)
						}
						found = found || all
					}
					assert.True(t, found, "%s.%s: the default %q (from its doc comment: %q) is not in the default cell of the row of `%s` in docs/%s",
						typ.Name(), goField, items, def, name, m.page)
				}
			}

			names := caddyfileNames(t, files, m.parser)
			require.NotEmpty(t, names)
			for _, name := range names {
				assert.NotEmpty(t, rowsNaming(name), "Caddyfile subdirective %q is in no options table of docs/%s", name, m.page)
				target := name
				if ex, ok := m.exceptions[name]; ok {
					target = ex
				}
				assert.True(t, jsonNames[target], "Caddyfile subdirective %q sets no JSON field of its own name: list it in the exceptions of %s with the JSON field it sets", name, m.page)
			}
			for name, target := range m.exceptions {
				assert.Contains(t, names, name, "exception %q of %s is not a Caddyfile subdirective (any more)", name, m.page)
				assert.True(t, jsonNames[target], "exception %q of %s maps to %q, which is not a JSON field", name, m.page, target)
			}
		})
	}
}

// markdownPages are the pages whose links TestDocsLinks checks.
func markdownPages(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	require.NotEmpty(t, pages)
	return append([]string{filepath.Join(root, "README.md")}, pages...)
}

// proseLines returns the lines of a Markdown text outside fenced code
// blocks.
func proseLines(doc string) []string {
	var out []string
	fenced := false
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, l)
		}
	}
	return out
}

// anchors returns the GitHub anchors of a Markdown page's headings.
func anchors(doc string) map[string]bool {
	out := map[string]bool{}
	count := map[string]int{}
	for _, l := range proseLines(doc) {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(l, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r), unicode.IsDigit(r), r == '_', r == '-':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		slug := b.String()
		if n := count[slug]; n > 0 {
			out[slug+"-"+strconv.Itoa(n)] = true
		} else {
			out[slug] = true
		}
		count[slug]++
	}
	return out
}

// TestDocsLinks: every relative link in README.md and docs/*.md points to
// a file or directory that exists, and every #anchor to a heading of the
// target page.
func TestDocsLinks(t *testing.T) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	code := regexp.MustCompile("`[^`]*`")
	scheme := regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	checked := 0
	for _, page := range markdownPages(t) {
		rel, _ := filepath.Rel(repoRoot(t), page)
		doc := string(readFile(t, page))
		for _, line := range proseLines(doc) {
			for _, m := range link.FindAllStringSubmatch(code.ReplaceAllString(line, "``"), -1) {
				target := m[1]
				if scheme.MatchString(target) {
					continue // http(s), mailto
				}
				checked++
				path, anchor, _ := strings.Cut(target, "#")
				file := page
				if path != "" {
					file = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
					_, err := os.Stat(file)
					if !assert.NoError(t, err, "%s: link %q points to a missing file", rel, target) {
						continue
					}
				}
				if anchor == "" {
					continue
				}
				if !assert.True(t, strings.HasSuffix(file, ".md"), "%s: link %q has an anchor into a file that is not Markdown", rel, target) {
					continue
				}
				assert.True(t, anchors(string(readFile(t, file)))[anchor], "%s: link %q: no heading with anchor #%s in %s", rel, target, anchor, filepath.Base(file))
			}
		}
	}
	require.Greater(t, checked, 50, "the link pattern found suspiciously few links")
}
