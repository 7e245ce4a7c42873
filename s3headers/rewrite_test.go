package s3headers

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLowerPrefixed(t *testing.T) {
	tests := []struct {
		name     string
		prefixes []string
		in       http.Header
		want     http.Header
	}{
		{
			name:     "canonical meta header gets its lower-case name back",
			prefixes: DefaultPrefixes,
			in:       http.Header{"X-Amz-Meta-Mixedcase": {"v"}, "Content-Type": {"text/plain"}},
			want:     http.Header{"x-amz-meta-mixedcase": {"v"}, "Content-Type": {"text/plain"}},
		},
		{
			name:     "both default prefixes, other x-amz headers untouched",
			prefixes: DefaultPrefixes,
			in: http.Header{
				"X-Amz-Meta-A":     {"1"},
				"X-Minio-Meta-B":   {"2"},
				"X-Amz-Request-Id": {"r"},
				"X-Amz-Version-Id": {"v"},
				"X-Amz-Metadata":   {"not a meta header: no dash after meta"},
			},
			want: http.Header{
				"x-amz-meta-a":     {"1"},
				"x-minio-meta-b":   {"2"},
				"X-Amz-Request-Id": {"r"},
				"X-Amz-Version-Id": {"v"},
				"X-Amz-Metadata":   {"not a meta header: no dash after meta"},
			},
		},
		{
			name:     "multiple values kept in order",
			prefixes: DefaultPrefixes,
			in:       http.Header{"X-Amz-Meta-List": {"c", "a", "b"}},
			want:     http.Header{"x-amz-meta-list": {"c", "a", "b"}},
		},
		{
			name:     "mixed-case spelling from a non-Go source is lower-cased whole",
			prefixes: DefaultPrefixes,
			in:       http.Header{"x-AMZ-meta-Foo_Bar": {"v"}},
			want:     http.Header{"x-amz-meta-foo_bar": {"v"}},
		},
		{
			name:     "already lower case is left alone",
			prefixes: DefaultPrefixes,
			in:       http.Header{"x-amz-meta-a": {"1"}},
			want:     http.Header{"x-amz-meta-a": {"1"}},
		},
		{
			name:     "both spellings merge, lower-case values first",
			prefixes: DefaultPrefixes,
			in:       http.Header{"x-amz-meta-a": {"lower"}, "X-Amz-Meta-A": {"canon1", "canon2"}},
			want:     http.Header{"x-amz-meta-a": {"lower", "canon1", "canon2"}},
		},
		{
			name:     "no-op without matching headers",
			prefixes: DefaultPrefixes,
			in:       http.Header{"Content-Type": {"x"}, "Etag": {`"e"`}, "X-Amz-Me": {"short"}},
			want:     http.Header{"Content-Type": {"x"}, "Etag": {`"e"`}, "X-Amz-Me": {"short"}},
		},
		{
			name:     "custom prefix only",
			prefixes: []string{"x-amz-checksum-"},
			in:       http.Header{"X-Amz-Checksum-Crc32": {"c"}, "X-Amz-Meta-A": {"1"}},
			want:     http.Header{"x-amz-checksum-crc32": {"c"}, "X-Amz-Meta-A": {"1"}},
		},
		{
			name:     "empty header",
			prefixes: DefaultPrefixes,
			in:       http.Header{},
			want:     http.Header{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.in.Clone()
			lowerPrefixed(h, tt.prefixes)
			assert.Equal(t, tt.want, h)
		})
	}
}

func TestLowerPrefixedManyHeaders(t *testing.T) {
	// Many insertions during one range loop: every name must end up lower
	// case exactly once, whatever the map does with keys added mid-loop.
	h := http.Header{}
	want := http.Header{}
	for i := range 200 {
		name := "X-Amz-Meta-K" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		h[name] = []string{name}
		want["x-amz-meta-k"+string(rune('a'+i%26))+string(rune('a'+i/26))] = []string{name}
	}
	lowerPrefixed(h, DefaultPrefixes)
	assert.Equal(t, want, h)
}

func TestLowerPrefixedNoAllocWithoutMatch(t *testing.T) {
	h := http.Header{
		"Content-Type":     {"application/octet-stream"},
		"Content-Length":   {"5"},
		"Etag":             {`"abc"`},
		"Last-Modified":    {"Mon, 01 Jan 2024 00:00:00 GMT"},
		"X-Amz-Request-Id": {"17A"},
		"x-amz-meta-done":  {"already lower"},
	}
	allocs := testing.AllocsPerRun(100, func() { lowerPrefixed(h, DefaultPrefixes) })
	assert.Zero(t, allocs)
}
