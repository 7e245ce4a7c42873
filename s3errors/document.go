package s3errors

import (
	"bytes"
	"encoding/xml"
	"io"
	"net/http"
)

// document renders an S3 error document as MinIO sends one.
func document(code, msg, resource, requestID string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>")
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString("</Code><Message>")
	_ = xml.EscapeText(&b, []byte(msg))
	b.WriteString("</Message><Resource>")
	_ = xml.EscapeText(&b, []byte(resource))
	b.WriteString("</Resource><RequestId>")
	_ = xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestId></Error>")
	return b.Bytes()
}

// trackingWriter remembers whether a response was started, so an error
// that comes after the proxy began answering is left alone.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush,
// hijack for WebSockets, deadlines).
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps io.Copy's fast path (sendfile) of the writer underneath.
func (w *trackingWriter) ReadFrom(r io.Reader) (int64, error) {
	w.wrote = true
	return io.Copy(w.ResponseWriter, r)
}
