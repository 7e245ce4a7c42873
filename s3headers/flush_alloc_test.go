package s3headers

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

type flushWriter struct {
	benchWriter
	flushes int
}

func (w *flushWriter) Flush() { w.flushes++ }

func TestFlushNoAlloc(t *testing.T) {
	// reverse_proxy with flush_interval -1 flushes after every read from
	// upstream: the wrapper's Flush path must not allocate.
	fw := &flushWriter{benchWriter: benchWriter{h: minioHeaders()}}
	rw := &responseWriter{prefixes: DefaultPrefixes}
	rw.ResponseWriter = fw
	rw.WriteHeader(http.StatusOK)
	allocs := testing.AllocsPerRun(100, func() { _ = http.NewResponseController(rw).Flush() })
	assert.Zero(t, allocs)
	assert.Equal(t, 101, fw.flushes)
}
