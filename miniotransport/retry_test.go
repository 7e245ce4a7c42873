package miniotransport

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
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

// TestSentBodyIsNeverResent: once a node has read part of an upload whose
// body streams (larger than replay_body), the upload is never sent again: the client gets an error (the node's own 503,
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

// TestUploadWithoutClientExpect: the transport asks the node for 100
// Continue itself, so an upload whose client sent no Expect header and that
// a node refuses before reading goes to the next node whole. With no_expect
// the body streams at once: either the whole body reaches a node or the
// upload fails; nothing short or doubled.
func TestUploadWithoutClientExpect(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     map[string]any
		mustPass bool
	}{
		{"expect added", nil, true},
		{"no_expect", map[string]any{"no_expect": true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFakeNode(t, shutdown), newFakeNode(t, serve)
			base := startProxy(t, staticProxy(tc.opts, a.addr(), b.addr()))
			body, sum := payload(t, 4<<20)
			req, err := http.NewRequest(http.MethodPut, base+"/bucket/object", bytes.NewReader(body))
			require.NoError(t, err)
			resp, err := client().Do(req)
			if tc.mustPass {
				require.NoError(t, err)
			}
			if err == nil {
				defer resp.Body.Close()
				if tc.mustPass {
					require.Equal(t, http.StatusOK, resp.StatusCode)
				}
				if resp.StatusCode == http.StatusOK {
					assert.Equal(t, sum, resp.Header.Get("X-Body-Sha256"), "a retried upload arrives whole")
				}
			}
			for _, r := range b.got() {
				assert.Equal(t, sum, r.sha, "nothing short or doubled")
			}
			if tc.mustPass {
				assert.Zero(t, a.bodyRead.Load(), "the refusing node read nothing")
			}
		})
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
// try_timeout set and a body small enough for replay_body (the node may
// still be writing it).
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

// TestHeadersAtTheDeadlineAreNotCut: response headers that arrive as
// try_timeout passes never reach the client with a body the deadline's
// cancel cut short: the read goes to the next node and the client gets a
// whole answer.
func TestHeadersAtTheDeadlineAreNotCut(t *testing.T) {
	a, b := newFakeNode(t, trickle), newFakeNode(t, serve)
	var once sync.Once
	testHookResponseHead = func() {
		// The first node's headers arrived; the deadline passes before
		// the leg takes them.
		once.Do(func() { time.Sleep(300 * time.Millisecond) })
	}
	t.Cleanup(func() { testHookResponseHead = nil })
	base := startProxy(t, staticProxy(map[string]any{"try_timeout": int64(100 * time.Millisecond)}, a.addr(), b.addr()))
	resp, err := client().Get(base + "/bucket/object")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "the body of a 200 must arrive whole")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok "+b.addr(), string(body))
}

// TestReplayedBodyGoesToTheNextNode: a PUT body of at most replay_body
// (256 KiB by default) is read in full before the first attempt, so a node
// that refuses the upload after reading part of it (503 SlowDownWrite, as a
// node answers right after a peer went down) or whose connection breaks
// mid-upload costs the client nothing: the next node gets the whole body.
// Off, or with a body over the limit, the upload is never resent.
func TestReplayedBodyGoesToTheNextNode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  nodeBehaviour
		opts   map[string]any
		replay bool
	}{
		{"refused after reading half", readHalfThen503, nil, true},
		{"connection closed after reading half", readHalfThenClose, nil, true},
		{"refused, replay_body off", readHalfThen503, map[string]any{"replay_body": -1}, false},
		{"refused, body over replay_body", readHalfThen503, map[string]any{"replay_body": 32 << 10}, false},
		{"connection closed, replay_body off", readHalfThenClose, map[string]any{"replay_body": -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newFakeNode(t, tc.first), newFakeNode(t, serve)
			base := startProxy(t, staticProxy(tc.opts, a.addr(), b.addr()))
			body, sum := payload(t, 64<<10)
			req, err := http.NewRequest(http.MethodPut, base+"/bucket/object", bytes.NewReader(body))
			require.NoError(t, err)
			resp, err := client().Do(req)
			if tc.replay {
				require.NoError(t, err)
				defer resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, b.addr(), resp.Header.Get("X-Node"))
				assert.Equal(t, sum, resp.Header.Get("X-Body-Sha256"), "the next node got the whole body, once, in order")
				require.Len(t, b.got(), 1)
			} else {
				if err == nil {
					_ = resp.Body.Close()
					assert.Contains(t, []int{http.StatusServiceUnavailable, http.StatusBadGateway}, resp.StatusCode)
				}
				assert.Empty(t, b.got(), "nothing was resent")
				assert.Zero(t, b.reqs.Load())
			}
			assert.Positive(t, a.bodyRead.Load(), "the first node read part of the body")
		})
	}
}

// TestReplayable: which requests have their body read in full first.
func TestReplayable(t *testing.T) {
	tr := &Transport{replayBody: 1000}
	withState := &requestState{repl: caddy.NewReplacer()}
	req := func(method string, length int64) *http.Request {
		r, err := http.NewRequest(method, "http://node/b/o", bytes.NewReader(make([]byte, max(length, 0))))
		require.NoError(t, err)
		r.ContentLength = length
		return r
	}
	for _, tc := range []struct {
		name string
		tr   *Transport
		req  *http.Request
		st   *requestState
		want bool
	}{
		{"PUT within the limit", tr, req(http.MethodPut, 1000), withState, true},
		{"PUT over the limit", tr, req(http.MethodPut, 1001), withState, false},
		{"PUT of unknown length (chunked)", tr, req(http.MethodPut, -1), withState, false},
		{"empty PUT", tr, req(http.MethodPut, 0), withState, false},
		{"POST (CompleteMultipartUpload, DeleteObjects)", tr, req(http.MethodPost, 10), withState, false},
		{"off", &Transport{}, req(http.MethodPut, 10), withState, false},
		{"no request state to keep the body in", tr, req(http.MethodPut, 10), &requestState{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.tr.replayable(tc.req, tc.st))
		})
	}
}
