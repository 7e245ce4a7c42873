package transparency

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// target is one way to reach MinIO: direct to a node, or through a proxy.
type target struct {
	Name string // "direct", "ours", "stock"
	Addr string // host:port the client connects to and signs for
	Pid  int    // Caddy's pid, 0 for direct
}

// rawResponse is what an HTTP/1.1 client sees, with the header names exactly
// as they were on the wire (Go's http.Response canonicalises them, which
// would hide the very difference this package looks for).
type rawResponse struct {
	Status int
	Names  []string    // header names in wire order, exact case
	Header http.Header // the same headers, canonical keys, for lookups
	Body   []byte
	// Continue is how long the client waited, after sending its request
	// headers with "Expect: 100-continue", for "100 Continue" (or for the
	// final answer if the server answered without one). Zero otherwise.
	Continue time.Duration
	Got100   bool
}

// rawRequest is a signed request ready for the wire.
type rawRequest struct {
	*http.Request
	// ExpectContinue sends "Expect: 100-continue" and holds the body back
	// until "100 Continue" arrives (or continueWait passes, as clients do).
	ExpectContinue bool
}

// continueWait is how long the raw client holds the body back waiting for
// "100 Continue"; botocore and the AWS CLI wait 1 s, so a proxy that needs
// longer costs every upload a second. We wait longer to measure it.
const continueWait = 3 * time.Second

// newRequest builds an unsigned request for target t. path is the escaped
// path plus an optional "?query".
func newRequest(t target, method, path string, body []byte) *http.Request {
	req, err := http.NewRequest(method, "http://"+t.Addr+path, nil)
	if err != nil {
		panic(fmt.Sprintf("newRequest %s %s: %v", method, path, err))
	}
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	return req
}

// signV4 signs req with SigV4 and the payload's SHA-256 (as the AWS SDKs do
// over plain HTTP).
func signV4(req *http.Request, body []byte, ak, sk string) *http.Request {
	sum := sha256.Sum256(body)
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	return signer.SignV4(*req, ak, sk, "", region)
}

// signV4Unsigned signs req with SigV4 and UNSIGNED-PAYLOAD.
func signV4Unsigned(req *http.Request, ak, sk string) *http.Request {
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	return signer.SignV4(*req, ak, sk, "", region)
}

// do sends req on a fresh connection and reads the whole answer.
func do(r rawRequest) (*rawResponse, error) {
	conn, err := net.DialTimeout("tcp", r.URL.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Minute))

	rec := &headRecorder{limit: 256 << 10}
	br := bufio.NewReaderSize(io.TeeReader(conn, rec), 64<<10)
	bw := bufio.NewWriterSize(conn, 64<<10)

	if err := writeHead(bw, r); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	resp := &rawResponse{}
	var final *http.Response
	interim := 0
	if r.ExpectContinue && r.Body != nil {
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(continueWait))
		res, err := http.ReadResponse(br, r.Request)
		resp.Continue = time.Since(start)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Minute))
		switch {
		case err != nil && isTimeout(err):
			// No answer in time: send the body anyway, like botocore.
		case err != nil:
			return nil, fmt.Errorf("waiting for 100 Continue: %w", err)
		case res.StatusCode == http.StatusContinue:
			resp.Got100 = true
			interim++
		default:
			final = res // answered without reading the body
		}
	}
	if final == nil {
		if r.Body != nil {
			if _, err := io.Copy(bw, r.Body); err != nil {
				return nil, fmt.Errorf("send body: %w", err)
			}
			if err := bw.Flush(); err != nil {
				return nil, err
			}
		}
		for {
			res, err := http.ReadResponse(br, r.Request)
			if err != nil {
				return nil, fmt.Errorf("read response: %w", err)
			}
			if res.StatusCode >= 100 && res.StatusCode < 200 {
				interim++
				continue
			}
			final = res
			break
		}
	}
	defer final.Body.Close()
	resp.Status = final.StatusCode
	resp.Header = final.Header
	resp.Names = rec.names(interim)
	resp.Body, err = io.ReadAll(final.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return resp, nil
}

// writeHead writes the request line and the headers, names as given.
func writeHead(w *bufio.Writer, r rawRequest) error {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.URL.RequestURI(), host)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range r.Header[k] {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	if r.Body != nil || r.Method == http.MethodPut || r.Method == http.MethodPost {
		fmt.Fprintf(w, "Content-Length: %d\r\n", r.ContentLength)
	}
	if r.ExpectContinue && r.Body != nil {
		w.WriteString("Expect: 100-continue\r\n")
	}
	_, err := w.WriteString("User-Agent: transparency-test\r\n\r\n")
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	if e, ok := err.(net.Error); ok {
		ne = e
	}
	return ne != nil && ne.Timeout()
}

// headRecorder keeps the first bytes read from the connection so the header
// names can be read back with their exact case.
type headRecorder struct {
	buf   bytes.Buffer
	limit int
}

func (h *headRecorder) Write(p []byte) (int, error) {
	if room := h.limit - h.buf.Len(); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		h.buf.Write(p[:room])
	}
	return len(p), nil
}

// names returns the header names of the response after skip interim
// (1xx) responses, in wire order.
func (h *headRecorder) names(skip int) []string {
	data := h.buf.Bytes()
	for i := 0; i < skip; i++ {
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			return nil
		}
		data = data[end+4:]
	}
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return nil
	}
	lines := strings.Split(string(data[:end]), "\r\n")[1:]
	names := make([]string, 0, len(lines))
	for _, l := range lines {
		if i := strings.IndexByte(l, ':'); i > 0 {
			names = append(names, l[:i])
		}
	}
	return names
}

func (r *rawResponse) String() string {
	return "HTTP " + strconv.Itoa(r.Status) + " " + strings.Join(r.Names, ",")
}
