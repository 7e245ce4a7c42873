package miniotransport

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// put sends body to url with or without Expect: 100-continue and returns
// the status, the answering node's hash header and the body.
func put(t *testing.T, url string, body []byte, expect bool) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	require.NoError(t, err)
	if expect {
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestUnsentUploadGoesToTheNextNode: a node that refuses an upload before
// reading a byte of it (MinIO shutting down, its request pool full, a
// SlowDown answer) costs the client nothing: the upload goes to the next
// node, streamed, and arrives there whole. Nothing reached the refusing
// node.
func TestUnsentUploadGoesToTheNextNode(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first nodeBehaviour
	}{
		{"shutdown answer", shutdown},
		{"429 TooManyRequests", busy429},
		{"503 SlowDownWrite", slowDown503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFakeNode(t, tc.first), newFakeNode(t, serve)
			base := startProxy(t, staticProxy(nil, a.addr(), b.addr()))
			body, sum := payload(t, 1<<20)
			status, hdr, msg := put(t, base+"/bucket/object", body, true)
			require.Equal(t, http.StatusOK, status, msg)
			assert.Equal(t, b.addr(), hdr.Get("X-Node"))
			assert.Equal(t, sum, hdr.Get("X-Body-Sha256"), "the next node got the whole body, once, in order")
			require.Len(t, b.got(), 1)
			assert.EqualValues(t, len(body), b.got()[0].size)
			assert.EqualValues(t, 1, a.reqs.Load(), "the refusing node was asked once")
			assert.Zero(t, a.bodyRead.Load(), "the refusing node read nothing")
		})
	}
}

// TestSentBodyIsNeverResent: once a node has read part of an upload, the
// upload is never sent again: the client gets an error (the node's own 503,
// or 502 when the node closed the connection while the proxy was still
// sending) and the next node gets nothing (no short, doubled or reordered
// body anywhere).
func TestSentBodyIsNeverResent(t *testing.T) {
	for _, expect := range []bool{true, false} {
		t.Run(map[bool]string{true: "Expect 100-continue", false: "no Expect"}[expect], func(t *testing.T) {
			a, b := newFakeNode(t, readHalfThen503), newFakeNode(t, serve)
			base := startProxy(t, staticProxy(nil, a.addr(), b.addr()))
			body, _ := payload(t, 1<<20)
			req, err := http.NewRequest(http.MethodPut, base+"/bucket/object", bytes.NewReader(body))
			require.NoError(t, err)
			if expect {
				req.Header.Set("Expect", "100-continue")
			}
			if resp, err := client().Do(req); err == nil {
				_ = resp.Body.Close()
				assert.Contains(t, []int{http.StatusServiceUnavailable, http.StatusBadGateway}, resp.StatusCode)
			} // else: the proxy answered and closed while the client still sent
			assert.Positive(t, a.bodyRead.Load())
			assert.Empty(t, b.got(), "nothing was resent")
			assert.Zero(t, b.reqs.Load())
		})
	}
}

// TestUploadWithoutExpectIsNotRetriedOnRefusal: without Expect:
// 100-continue the body streams at once, so even a node that answers
// before reading may have been handed bytes; whatever the transport saw, a
// retry either gets the whole body or does not happen.
func TestUploadWithoutExpectIsNotRetriedOnRefusal(t *testing.T) {
	a, b := newFakeNode(t, shutdown), newFakeNode(t, serve)
	base := startProxy(t, staticProxy(nil, a.addr(), b.addr()))
	body, sum := payload(t, 4<<20)
	req, err := http.NewRequest(http.MethodPut, base+"/bucket/object", bytes.NewReader(body))
	require.NoError(t, err)
	resp, err := client().Do(req)
	if err != nil {
		// The proxy answered and closed while the client was still sending:
		// the upload failed, visibly, and was not resent.
		assert.Empty(t, b.got())
		return
	}
	defer resp.Body.Close()
	status, hdr := resp.StatusCode, resp.Header
	switch status {
	case http.StatusOK:
		assert.Equal(t, sum, hdr.Get("X-Body-Sha256"), "a retried upload arrives whole")
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		assert.Empty(t, b.got(), "not retried: nothing reached the next node")
	default:
		t.Fatalf("status %d", status)
	}
	for _, r := range b.got() {
		assert.Equal(t, sum, r.sha)
	}
}

// TestNo100ContinueIsATryTimeout: a node that never says 100 Continue (a
// frozen node) gets no body; after try_timeout the upload goes to the next
// node whole.
func TestNo100ContinueIsATryTimeout(t *testing.T) {
	a, b := newFakeNode(t, stallHeaders), newFakeNode(t, serve)
	base := startProxy(t, staticProxy(map[string]any{"try_timeout": int64(300 * time.Millisecond)}, a.addr(), b.addr()))
	body, sum := payload(t, 256<<10)
	start := time.Now()
	status, hdr, msg := put(t, base+"/bucket/object", body, true)
	require.Equal(t, http.StatusOK, status, msg)
	assert.Equal(t, sum, hdr.Get("X-Body-Sha256"))
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Zero(t, a.bodyRead.Load())
}

// TestTryTimeoutMovesAReadOn: a GET to a frozen node is abandoned after
// try_timeout and served by the next node.
func TestTryTimeoutMovesAReadOn(t *testing.T) {
	a, b := newFakeNode(t, stallHeaders), newFakeNode(t, serve)
	base := startProxy(t, staticProxy(map[string]any{"try_timeout": int64(200 * time.Millisecond)}, a.addr(), b.addr()))
	start := time.Now()
	resp, err := client().Get(base + "/bucket/object")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, b.addr(), resp.Header.Get("X-Node"))
	assert.Less(t, time.Since(start), 5*time.Second, "not the frozen node's time")
}

// TestWriteDeadline: a node that read the whole upload and does not answer
// within Caddy's response_header_timeout (which starts at the end of the
// body) gives the client 504; the upload is not resent, even with
// try_timeout set.
func TestWriteDeadline(t *testing.T) {
	a, b := newFakeNode(t, readAllThenStall), newFakeNode(t, serve)
	base := startProxy(t, staticProxy(map[string]any{
		"response_header_timeout": int64(300 * time.Millisecond),
		"try_timeout":             int64(100 * time.Millisecond),
	}, a.addr(), b.addr()))
	body, _ := payload(t, 64<<10)
	status, _, _ := put(t, base+"/bucket/object", body, true)
	assert.Equal(t, http.StatusGatewayTimeout, status)
	assert.EqualValues(t, len(body), a.bodyRead.Load())
	assert.Empty(t, b.got())
}

// TestStartedResponseIsNotCut: a response that started within try_timeout
// streams to its end, however long that takes.
func TestStartedResponseIsNotCut(t *testing.T) {
	a := newFakeNode(t, trickle)
	base := startProxy(t, staticProxy(map[string]any{"try_timeout": int64(time.Second)}, a.addr()))
	resp, err := client().Get(base + "/bucket/object")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "0123456789", string(b), "3 s of body after a 1 s try_timeout")
}
