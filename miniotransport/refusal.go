package miniotransport

import (
	"bytes"
	"io"
	"net/http"
)

// refusal is what a MinIO answer says about the node, beyond its status.
type refusal uint8

const (
	// notRefused: an ordinary answer.
	notRefused refusal = iota
	// refusedBusy: the node is overloaded: 429 TooManyRequests (its request
	// pool is full; MinIO answers before running the handler), 503
	// ServerBusy, or 503 SlowDown/SlowDownRead/SlowDownWrite.
	refusedBusy
	// refusedGoingAway: the node is shutting down (503 with Connection:
	// close and the body "http: Server closed", answered before the
	// handler; MinIO's internal/http/server.go) or not initialised (503
	// XMinioServerNotInitialized, or an X-Minio-Server-Status header).
	refusedGoingAway
)

func (r refusal) String() string {
	switch r {
	case refusedBusy:
		return "busy"
	case refusedGoingAway:
		return "going away"
	}
	return "none"
}

// beforeHandler reports whether MinIO gives this answer before its S3
// handler runs, so the request was not processed at all whatever its
// method: the shutdown answer and 429 (maxClients). SlowDown and
// XMinioServerNotInitialized come from handlers that failed early, which is
// safe to retry only for requests whose body was never read or that are
// idempotent.
func (r refusal) beforeHandler(status int, code string) bool {
	switch {
	case r == refusedGoingAway && code == "":
		return true // "http: Server closed"
	case status == http.StatusTooManyRequests:
		return true
	}
	return false
}

const (
	minioStatusHeader = "X-Minio-Server-Status"
	// minioErrorCodeHeader carries the S3 error code of an answer without a
	// body (HEAD).
	minioErrorCodeHeader = "X-Minio-Error-Code"
	serverClosedBody     = "http: Server closed"
	// maxPeek bounds the bytes of a 429/503 body read to find MinIO's error
	// code; MinIO's XML errors are a few hundred bytes.
	maxPeek = 4 << 10
	// statusClientClosed is the status MinIO gives ClientDisconnected
	// (nginx's 499).
	statusClientClosed = 499
)

// classify reads what resp says about the node. For 429 and 503 it peeks
// at the start of the body (MinIO's error XML or the shutdown text) and
// puts the bytes back, so the client still gets the whole answer. It
// returns the S3 error code if it found one.
func classify(resp *http.Response) (refusal, string) {
	if resp.Header.Get(minioStatusHeader) != "" {
		return refusedGoingAway, ""
	}
	if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != statusClientClosed {
		return notRefused, ""
	}
	head := peek(resp)
	if resp.StatusCode == http.StatusServiceUnavailable && bytes.HasPrefix(bytes.TrimSpace(head), []byte(serverClosedBody)) {
		return refusedGoingAway, ""
	}
	code := errorCode(head)
	if code == "" {
		// MinIO answers HEAD without a body: the S3 error code is in a
		// header (writeErrorResponseHeadersOnly, cmd/api-response.go).
		code = resp.Header.Get(minioErrorCodeHeader)
	}
	if resp.StatusCode == statusClientClosed {
		// MinIO's 499 ClientDisconnected means its own context of the
		// request was cancelled; the caller only asks while the client is
		// still there, so the node cancelled it itself: it is shutting
		// down (seen: a GET sent as a whole-cluster restart began). Its
		// request limiter (maxClients, cmd/handler-api.go) answers such a
		// request with a bare 499, no body and no code (seen: a GET 11 ms
		// into a whole-cluster restart).
		if code == "ClientDisconnected" || code == "" {
			return refusedGoingAway, code
		}
		return notRefused, code
	}
	switch code {
	case "XMinioServerNotInitialized":
		return refusedGoingAway, code
	case "ServerBusy", "SlowDown", "SlowDownRead", "SlowDownWrite", "TooManyRequests",
		// 503 RequestTimeout: MinIO could not take the object's lock in
		// time ("please reduce your request rate"), typically while a peer
		// holding it is frozen; another node may serve a read.
		"RequestTimeout":
		return refusedBusy, code
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return refusedBusy, code
	}
	return notRefused, code
}

// peek reads up to maxPeek bytes of resp's body (less if it says it is
// shorter) and puts them back in front of the rest.
func peek(resp *http.Response) []byte {
	if resp.Body == nil || resp.Body == http.NoBody {
		return nil
	}
	limit := int64(maxPeek)
	if resp.ContentLength >= 0 && resp.ContentLength < limit {
		limit = resp.ContentLength
	}
	buf := make([]byte, limit)
	n, err := io.ReadFull(resp.Body, buf)
	buf = buf[:n]
	rest := resp.Body
	switch err {
	case nil, io.ErrUnexpectedEOF, io.EOF:
	default:
		// a broken body: give the client what was read and the error
		rest = readCloser{io.MultiReader(&errReader{err}), resp.Body}
	}
	resp.Body = readCloser{io.MultiReader(bytes.NewReader(buf), rest), resp.Body}
	return buf
}

// errorCode returns the <Code> of an S3 XML error, or "".
func errorCode(b []byte) string {
	i := bytes.Index(b, []byte("<Code>"))
	if i < 0 {
		return ""
	}
	b = b[i+len("<Code>"):]
	j := bytes.IndexByte(b, '<')
	if j < 0 || j > 64 {
		return ""
	}
	return string(b[:j])
}

type readCloser struct {
	io.Reader
	io.Closer
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }
