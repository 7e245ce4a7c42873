package s3listuploads

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/minio-lb/caddy-minio-lb/healthready"
	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
	"go.uber.org/zap"
)

// placeholderNodes names the nodes a listing was sent to (dial addresses,
// space-separated), for access logs: {http.s3_list_uploads.nodes}.
const placeholderNodes = "http.s3_list_uploads.nodes"

// answer is one node's reply, body read (and gunzipped) in full.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// serveList sends r to every node of the pool, then writes the merged
// listing, a node's own error, or a 503 ServiceUnavailable.
func (l *ListUploads) serveList(w http.ResponseWriter, r *http.Request) error {
	bucket, _ := s3op.BucketObject(r.Host, r.URL.Path, l.domains)
	lookup := l.upstreams
	if lookup == nil {
		lookup = healthready.PoolUpstreams
	}
	dials, routable, ok := lookup(l.Pool)
	if !ok || len(dials) == 0 {
		l.logger.Error("s3_list_uploads: no healthready pool of this name is provisioned", zap.String("pool", l.Pool))
		return writeS3Error(w, r, bucket, http.StatusServiceUnavailable, "ServiceUnavailable",
			"The multipart upload listing cannot reach the cluster's nodes. Please try again later.")
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set(placeholderNodes, strings.Join(dials, " "))
	}
	var down []string
	for i, ok := range routable {
		if !ok {
			down = append(down, strconv.Itoa(i+1))
		}
	}
	if len(down) > 0 {
		l.logger.Warn("s3_list_uploads: refusing a partial listing: not every node is routable",
			zap.String("pool", l.Pool), zap.Strings("nodes", dials), zap.Strings("not_routable", down))
		return writeS3Error(w, r, bucket, http.StatusServiceUnavailable, "ServiceUnavailable",
			fmt.Sprintf("The multipart upload listing needs every node of the cluster; node %s of %d is not available. Please try again later.",
				strings.Join(down, ", "), len(dials)))
	}

	answers := l.askAll(r, dials)
	for i, a := range answers {
		if a.err != nil {
			l.logger.Warn("s3_list_uploads: a node did not answer; no partial listing",
				zap.String("pool", l.Pool), zap.String("node", dials[i]), zap.Error(a.err))
			return writeS3Error(w, r, bucket, http.StatusServiceUnavailable, "ServiceUnavailable",
				fmt.Sprintf("The multipart upload listing needs every node of the cluster; node %d of %d did not answer. Please try again later.",
					i+1, len(dials)))
		}
	}
	for _, a := range answers {
		if a.status != http.StatusOK {
			// The node's own S3 error (signature, bucket, argument):
			// every node checks the same request the same way.
			return writeAnswer(w, a.status, a.header, a.body)
		}
	}

	results := make([]*listResult, len(answers))
	for i, a := range answers {
		res, err := decodeResult(a.body)
		if err != nil {
			l.logger.Warn("s3_list_uploads: a node's answer is not a listing; no partial listing",
				zap.String("pool", l.Pool), zap.String("node", dials[i]), zap.Error(err))
			return writeS3Error(w, r, bucket, http.StatusServiceUnavailable, "ServiceUnavailable",
				fmt.Sprintf("The multipart upload listing got an answer it cannot read from node %d of %d. Please try again later.", i+1, len(dials)))
		}
		results[i] = res
	}
	p, err := parseParams(r.URL.RawQuery)
	if err != nil {
		return writeS3Error(w, r, bucket, http.StatusBadRequest, "InvalidArgument", "Argument "+err.Error())
	}
	if results[0].Bucket != "" {
		bucket = results[0].Bucket
	}
	merged, err := merge(p, bucket, results)
	if err != nil {
		l.logger.Warn("s3_list_uploads: the nodes' answers cannot be merged", zap.String("pool", l.Pool), zap.Error(err))
		return writeS3Error(w, r, bucket, http.StatusServiceUnavailable, "ServiceUnavailable",
			"The multipart upload listing cannot merge the nodes' answers. Please try again later.")
	}
	body, err := encodeResult(merged)
	if err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	return writeAnswer(w, http.StatusOK, answers[0].header, body)
}

// askAll sends r to every node at once and waits for every answer, within
// the timeout and as long as the client waits.
func (l *ListUploads) askAll(r *http.Request, dials []string) []answer {
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(l.Timeout))
	defer cancel()
	header := outHeader(r)
	answers := make([]answer, len(dials))
	var wg sync.WaitGroup
	for i, dial := range dials {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					answers[i] = answer{err: fmt.Errorf("panic asking %s: %v", dial, v)}
				}
			}()
			answers[i] = l.ask(ctx, r, dial, header.Clone())
		}()
	}
	wg.Wait()
	return answers
}

// ask sends the request to one node: the same method, path, raw query and
// Host, the headers outHeader prepared; no body.
func (l *ListUploads) ask(ctx context.Context, r *http.Request, dial string, header http.Header) answer {
	out := &http.Request{
		Method: http.MethodGet,
		URL: &url.URL{
			Scheme:   l.Scheme,
			Host:     dial,
			Path:     r.URL.Path,
			RawPath:  r.URL.RawPath,
			RawQuery: r.URL.RawQuery,
		},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Host:       r.Host,
	}
	resp, err := l.client.Do(out.WithContext(ctx))
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	encoding := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	switch encoding {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(resp.Body)
		if err != nil {
			return answer{err: fmt.Errorf("gzip answer: %w", err)}
		}
		defer gz.Close()
		body = gz
	default:
		return answer{err: fmt.Errorf("answer in Content-Encoding %q, which the listing cannot read", encoding)}
	}
	b, err := io.ReadAll(io.LimitReader(body, l.MaxResponseSize+1))
	if err != nil {
		return answer{err: fmt.Errorf("reading the answer: %w", err)}
	}
	if int64(len(b)) > l.MaxResponseSize {
		return answer{err: fmt.Errorf("answer larger than max_response_size (%d bytes)", l.MaxResponseSize)}
	}
	h := resp.Header
	delete(h, "Content-Encoding") // the body is kept decoded
	return answer{status: resp.StatusCode, header: h, body: b}
}

// hopHeaders are removed from what is sent to the nodes and from what is
// sent back, as Caddy's reverse_proxy removes them (RFC 9110, 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders deletes the hop-by-hop fields and those the
// Connection field names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		delete(h, name)
	}
}

// outHeader is what the nodes get: the client's header fields as they came
// (the signed ones among them), minus the hop-by-hop fields, plus
// X-Forwarded-For, -Proto and -Host as Caddy's reverse_proxy sets them
// (an incoming X-Forwarded-For is kept and extended only from a trusted
// proxy), so that MinIO sees the same client address through either path.
func outHeader(r *http.Request) http.Header {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	removeHopHeaders(h)
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = []string{""} // keeps Go from adding its own
	}
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	clientIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		delete(h, "X-Forwarded-For")
		delete(h, "X-Forwarded-Proto")
		delete(h, "X-Forwarded-Host")
		return h
	}
	clientIP, _, _ = strings.Cut(clientIP, "%")
	if prior := strings.Join(h["X-Forwarded-For"], ", "); trusted && prior != "" {
		h["X-Forwarded-For"] = []string{prior + ", " + clientIP}
	} else {
		h["X-Forwarded-For"] = []string{clientIP}
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	if v := h.Values("X-Forwarded-Proto"); trusted && len(v) > 0 && v[len(v)-1] != "" {
		proto = v[len(v)-1]
	}
	h["X-Forwarded-Proto"] = []string{proto}
	host := r.Host
	if v := h.Values("X-Forwarded-Host"); trusted && len(v) > 0 && v[len(v)-1] != "" {
		host = v[len(v)-1]
	}
	h["X-Forwarded-Host"] = []string{host}
	return h
}

// writeAnswer writes status, the header fields of a node's answer (minus
// the hop-by-hop ones and the framing, which is recomputed) and body.
func writeAnswer(w http.ResponseWriter, status int, header http.Header, body []byte) error {
	out := w.Header()
	for k, v := range header {
		out[k] = append([]string(nil), v...)
	}
	removeHopHeaders(out)
	delete(out, "Content-Encoding")
	out["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	_, _ = w.Write(body) // a failed write is a client that went away
	return nil
}

// s3Error mirrors MinIO's APIErrorResponse (cmd/api-errors.go).
type s3Error struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string
	Message    string
	Key        string `xml:"Key,omitempty"`
	BucketName string `xml:"BucketName,omitempty"`
	Resource   string
	Region     string `xml:"Region,omitempty"`
	RequestID  string `xml:"RequestId"`
	HostID     string `xml:"HostId"`
}

// writeS3Error answers with an S3 error document, as MinIO writes one.
func writeS3Error(w http.ResponseWriter, r *http.Request, bucket string, status int, code, msg string) error {
	id := strings.ToUpper(strconv.FormatInt(time.Now().UnixNano(), 16))
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(s3Error{Code: code, Message: msg, BucketName: bucket, Resource: r.URL.Path, RequestID: id}); err != nil {
		return caddyhttp.Error(http.StatusInternalServerError, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("X-Amz-Request-Id", id)
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	return writeAnswer(w, status, nil, buf.Bytes())
}
