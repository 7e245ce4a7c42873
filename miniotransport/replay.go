package miniotransport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
)

// defaultReplayBody is replay_body when it is not set: small objects, the
// uploads that an SDK's own retry costs most relative to their size.
const defaultReplayBody = 256 << 10

// replayable reports whether req's body is read in full before it goes to
// a node, so that every attempt can send it whole: a PUT (an object, a
// part, a bucket's configuration; each is idempotent) whose length is
// known and at most replay_body. A node that refuses such a PUT after it
// read the body (503 SlowDownWrite from a node that has not reconnected to
// a peer yet, during a rolling restart) or whose connection breaks passes
// it to the next node instead of failing the client. Larger and chunked
// bodies stream as before and are never resent.
func (t *Transport) replayable(req *http.Request, st *requestState) bool {
	return t.replayBody > 0 && st.repl != nil && req.Method == http.MethodPut &&
		req.ContentLength > 0 && req.ContentLength <= t.replayBody &&
		req.Body != nil && req.Body != http.NoBody
}

// readReplay reads req's body in full on the request's first attempt; later
// attempts (the request's state lives in its replacer) find it read. The
// attempts of a PUT run one after the other, so st.replay needs no lock.
func (st *requestState) readReplay(req *http.Request) error {
	if st.replay != nil {
		return nil
	}
	buf := make([]byte, req.ContentLength)
	if _, err := io.ReadFull(req.Body, buf); err != nil {
		return fmt.Errorf("reading the %d-byte request body before sending it (replay_body): %w", req.ContentLength, err)
	}
	st.replay = buf
	return nil
}

// replayReader is a fresh reader of the request's body read in full, or
// nil when it was not read in full.
func (st *requestState) replayReader() io.ReadCloser {
	if st.replay == nil {
		return nil
	}
	return io.NopCloser(bytes.NewReader(st.replay))
}

// timedOut reports whether an attempt's error is a deadline (try_timeout,
// response_header_timeout) rather than a broken connection. A replayable
// PUT is not sent again after a deadline: the node read the body and may
// still be writing the object.
func timedOut(err error) bool {
	var te *timeoutError
	var ne net.Error
	// leg.explain turns the transport's own try_timeout into a timeoutError.
	return errors.As(err, &te) || (errors.As(err, &ne) && ne.Timeout())
}
