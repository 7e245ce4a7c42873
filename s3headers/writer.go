package s3headers

import (
	"io"
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// responseWriter defers the header-name rewrite until the final status is
// written, the same way Caddy's `headers` handler defers response header
// operations (modules/caddyhttp/headers: responseWriterWrapper): handlers
// after this one (reverse_proxy) fill the header map and then call
// WriteHeader, which is the last moment the names can still be changed.
//
// Every path that can commit the header to the wire goes through
// WriteHeader first: Write, ReadFrom and Flush. Hijack, Push and Unwrap come
// from the embedded caddyhttp.ResponseWriterWrapper, so
// http.NewResponseController finds the underlying Hijacker (websockets) and
// the io.ReaderFrom fast path is kept.
type responseWriter struct {
	caddyhttp.ResponseWriterWrapper
	prefixes    []string
	wroteHeader bool
}

// writerPool recycles wrappers so that a request costs no allocation.
// A wrapper is returned to the pool when ServeHTTP returns; net/http forbids
// using a ResponseWriter after that, and a hijacked connection no longer
// goes through it.
var writerPool = sync.Pool{New: func() any { return new(responseWriter) }}

func (rw *responseWriter) WriteHeader(status int) {
	if rw.wroteHeader {
		return
	}
	// 1xx (100 Continue, 103 Early Hints) are informational: they pass
	// untouched and the final header is still to come. 101 Switching
	// Protocols is final, as net/http treats it.
	if status >= 100 && status <= 199 && status != http.StatusSwitchingProtocols {
		rw.ResponseWriter.WriteHeader(status)
		return
	}
	rw.wroteHeader = true
	lowerPrefixed(rw.ResponseWriter.Header(), rw.prefixes)
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *responseWriter) Write(p []byte) (int, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.ResponseWriter.Write(p)
}

// ReadFrom keeps the io.ReaderFrom fast path (sendfile, splice) of the
// underlying writer, after the header has gone through WriteHeader.
func (rw *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError lets http.NewResponseController(rw).Flush() work. Flushing
// commits the header, so the rewrite must run first; without this method
// the controller would unwrap past us and the header would leave as is.
func (rw *responseWriter) FlushError() error {
	if !rw.wroteHeader {
		rw.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(rw.ResponseWriter).Flush()
}

// Flush implements http.Flusher for handlers that type-assert
// w.(http.Flusher) instead of using http.ResponseController.
func (rw *responseWriter) Flush() {
	_ = rw.FlushError()
}

// Interface guards
var (
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ io.ReaderFrom       = (*responseWriter)(nil)
	_ http.Pusher         = (*responseWriter)(nil)
	_ http.Flusher        = (*responseWriter)(nil)
)
