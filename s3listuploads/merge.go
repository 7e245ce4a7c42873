package s3listuploads

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// s3NS is the namespace of S3's XML answers.
const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

// defaultMaxUploads is S3's page size when max-uploads is absent, and the
// largest page S3 returns whatever max-uploads asks for.
const defaultMaxUploads = 1000

// listResult mirrors MinIO's ListMultipartUploadsResponse field by field
// and tag by tag (cmd/api-response.go), so that encoding/xml, which MinIO
// uses too, writes the same bytes MinIO writes. XMLName carries no tag:
// decoding accepts the root element in any namespace (checked by name),
// encoding writes the one in the value (s3NS).
type listResult struct {
	XMLName xml.Name

	Bucket             string
	KeyMarker          string
	UploadIDMarker     string `xml:"UploadIdMarker"`
	NextKeyMarker      string
	NextUploadIDMarker string `xml:"NextUploadIdMarker"`
	Delimiter          string `xml:"Delimiter,omitempty"`
	Prefix             string
	EncodingType       string `xml:"EncodingType,omitempty"`
	MaxUploads         int
	IsTruncated        bool

	Uploads []upload `xml:"Upload"`

	CommonPrefixes []commonPrefix
}

// upload mirrors MinIO's Upload; the fields the merge does not look at
// (Initiator, Owner, StorageClass) are passed on as the node sent them.
type upload struct {
	Key          string
	UploadID     string `xml:"UploadId"`
	Initiator    owner
	Owner        owner
	StorageClass string
	Initiated    string
}

type owner struct {
	ID          string
	DisplayName string
}

type commonPrefix struct {
	Prefix string
}

// params are the listing parameters of the request, read as MinIO reads
// them (url.Values.Get: the first value of each name).
type params struct {
	prefix, delimiter, keyMarker, uploadIDMarker, encodingType string
	maxUploads                                                 int // as requested, echoed
	urlEncoding                                                bool
}

// parseParams reads the listing parameters from a raw query. A max-uploads
// that is not an integer from 0 up is an error (nodes answer such a request
// with 400 InvalidArgument before this is reached).
func parseParams(rawQuery string) (params, error) {
	q, _ := url.ParseQuery(rawQuery) // a malformed pair is dropped, as r.Form drops it
	p := params{
		prefix:         q.Get("prefix"),
		delimiter:      q.Get("delimiter"),
		keyMarker:      q.Get("key-marker"),
		uploadIDMarker: q.Get("upload-id-marker"),
		encodingType:   q.Get("encoding-type"),
		maxUploads:     defaultMaxUploads,
	}
	if v := q.Get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, fmt.Errorf("max-uploads %q: must be an integer between 0 and 2147483647", v)
		}
		p.maxUploads = n
	}
	p.urlEncoding = strings.EqualFold(p.encodingType, "url")
	return p, nil
}

// pageSize is the number of entries one page holds: what was asked, at
// most S3's 1000.
func (p params) pageSize() int { return min(p.maxUploads, defaultMaxUploads) }

// decodeResult parses one node's answer.
func decodeResult(body []byte) (*listResult, error) {
	var res listResult
	if err := xml.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("parsing ListMultipartUploadsResult: %w", err)
	}
	if res.XMLName.Local != "ListMultipartUploadsResult" {
		return nil, fmt.Errorf("parsing ListMultipartUploadsResult: root element is <%s>", res.XMLName.Local)
	}
	return &res, nil
}

// entry is one upload or common prefix of the merged listing, with its key
// decoded and its initiation time in nanoseconds.
type entry struct {
	key      string // decoded
	initNano int64
	up       *upload // nil for a common prefix a node returned
}

// less orders entries by key, then initiation, then upload id: S3's order
// (keys in UTF-8 binary order, the uploads of one key by initiation).
func less(a, b *entry) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	if a.initNano != b.initNano {
		return a.initNano < b.initNano
	}
	return uploadIDOf(a) < uploadIDOf(b)
}

func uploadIDOf(e *entry) string {
	if e.up == nil {
		return ""
	}
	return e.up.UploadID
}

// initiation is an upload's initiation time: the nanoseconds MinIO encodes
// in its upload ids (base64url of "<deployment id>.<uuid>x<unix nanos>", the
// time MinIO itself sorts the uploads of one object by), else the
// Initiated element (millisecond precision).
func initiation(id, initiated string) int64 {
	if ns, ok := idNanos(id); ok {
		return ns
	}
	if t, err := time.Parse(time.RFC3339Nano, initiated); err == nil {
		return t.UnixNano()
	}
	return 0
}

// idNanos decodes the initiation time of a MinIO upload id.
func idNanos(id string) (int64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return 0, false
	}
	dot := bytes.LastIndexByte(raw, '.')
	x := bytes.LastIndexByte(raw, 'x')
	if dot < 0 || x < dot {
		return 0, false
	}
	ns, err := strconv.ParseInt(string(raw[x+1:]), 10, 64)
	if err != nil || ns <= 0 {
		return 0, false
	}
	return ns, true
}

// decodeName undoes MinIO's encoding-type=url encoding of a name ('+' for
// a space, %XX for every other byte outside [A-Za-z0-9-_.*/]).
func decodeName(s string, urlEncoding bool) (string, error) {
	if !urlEncoding {
		return s, nil
	}
	return url.QueryUnescape(s)
}

// encodeName is MinIO's s3URLEncode (cmd/api-utils.go) for
// encoding-type=url: a space becomes '+', every byte outside
// [A-Za-z0-9-_.*/] becomes %XX (upper-case hex).
func encodeName(s string, urlEncoding bool) string {
	if !urlEncoding {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			b.WriteByte('+')
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '/', c == '*':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		}
	}
	return b.String()
}

// merge builds the one answer S3 would give for p from every node's answer:
// the union of their uploads, deduplicated by upload id, in S3's order,
// filtered by prefix and the markers, grouped by delimiter, cut to one
// page. A node that said its own answer is truncated (MinIO does, for a
// prefix listing longer than max-uploads) only vouches for the entries up
// to its last one: the merged page stops there and is truncated too.
// bucket names the bucket of the answer.
func merge(p params, bucket string, answers []*listResult) (*listResult, error) {
	seenUpload := make(map[string]bool)
	seenPrefix := make(map[string]bool)
	var all []*entry
	var horizon *entry // the earliest last entry among truncated answers
	for i, a := range answers {
		var last *entry
		for j := range a.Uploads {
			u := &a.Uploads[j]
			key, err := decodeName(u.Key, p.urlEncoding)
			if err != nil {
				return nil, fmt.Errorf("answer %d: upload key %q: %v", i, u.Key, err)
			}
			e := &entry{key: key, initNano: initiation(u.UploadID, u.Initiated), up: u}
			if last == nil || less(last, e) {
				last = e
			}
			if !seenUpload[u.UploadID] {
				seenUpload[u.UploadID] = true
				all = append(all, e)
			}
		}
		for _, cp := range a.CommonPrefixes {
			key, err := decodeName(cp.Prefix, p.urlEncoding)
			if err != nil {
				return nil, fmt.Errorf("answer %d: common prefix %q: %v", i, cp.Prefix, err)
			}
			e := &entry{key: key}
			if last == nil || less(last, e) {
				last = e
			}
			if !seenPrefix[key] {
				seenPrefix[key] = true
				all = append(all, e)
			}
		}
		if a.IsTruncated {
			if last == nil {
				return nil, fmt.Errorf("answer %d: truncated, yet lists nothing to continue from", i)
			}
			if horizon == nil || less(last, horizon) {
				horizon = last
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return less(all[i], all[j]) })

	out := &listResult{
		XMLName:        xml.Name{Space: s3NS, Local: "ListMultipartUploadsResult"},
		Bucket:         bucket,
		KeyMarker:      encodeName(p.keyMarker, p.urlEncoding),
		UploadIDMarker: p.uploadIDMarker,
		Delimiter:      encodeName(p.delimiter, p.urlEncoding),
		Prefix:         encodeName(p.prefix, p.urlEncoding),
		EncodingType:   p.encodingType,
		MaxUploads:     p.maxUploads,
	}
	after := markerFilter(p, all)
	size := p.pageSize()
	var lastKey, lastID, lastPrefix string
	emitted := 0
	for _, e := range all {
		if size == 0 {
			break // max-uploads=0: an empty page, not truncated
		}
		if !strings.HasPrefix(e.key, p.prefix) || !after(e) {
			continue
		}
		cp, grouped := commonPrefixOf(p, e)
		if e.up == nil && !grouped {
			continue // a node's common prefix, but no delimiter was asked
		}
		if grouped && (cp == lastPrefix || (p.keyMarker != "" && cp <= p.keyMarker)) {
			continue // listed already, on this page or an earlier one
		}
		if horizon != nil && less(horizon, e) {
			// beyond what every node vouched for: the next page goes on
			if emitted == 0 {
				return nil, fmt.Errorf("a truncated answer ends before the first entry of the page")
			}
			out.IsTruncated = true
			break
		}
		if emitted == size {
			out.IsTruncated = true
			break
		}
		emitted++
		if grouped {
			lastPrefix = cp
			lastKey, lastID = cp, ""
			out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: encodeName(cp, p.urlEncoding)})
			continue
		}
		u := *e.up
		u.Key = encodeName(e.key, p.urlEncoding)
		out.Uploads = append(out.Uploads, u)
		lastKey, lastID = e.key, u.UploadID
	}
	if !out.IsTruncated && horizon != nil && size > 0 {
		// A node has more after its last entry, which is on this page.
		if emitted == 0 {
			return nil, fmt.Errorf("a truncated answer ends before the first entry of the page")
		}
		out.IsTruncated = true
	}
	if out.IsTruncated {
		out.NextKeyMarker = encodeName(lastKey, p.urlEncoding)
		out.NextUploadIDMarker = lastID
	}
	return out, nil
}

// commonPrefixOf is the common prefix e is grouped into: prefix plus the
// key up to and including the first delimiter after the prefix.
func commonPrefixOf(p params, e *entry) (string, bool) {
	if p.delimiter == "" {
		return "", false
	}
	if e.up == nil {
		return e.key, true // a node's own common prefix
	}
	rest := e.key[len(p.prefix):]
	i := strings.Index(rest, p.delimiter)
	if i < 0 {
		return "", false
	}
	return p.prefix + rest[:i+len(p.delimiter)], true
}

// markerFilter returns whether an entry comes after key-marker and
// upload-id-marker. Without upload-id-marker: keys greater than
// key-marker. With it: also the uploads of key-marker's key that come
// after that upload in S3's order; the upload is found in the listing, or,
// when it is gone (completed or aborted since the previous page), placed
// by the initiation time its MinIO id carries; an id that carries none
// falls back to S3's documented rule, upload ids greater than the marker.
func markerFilter(p params, all []*entry) func(*entry) bool {
	k, u := p.keyMarker, p.uploadIDMarker
	if k == "" {
		return func(*entry) bool { return true }
	}
	if u == "" {
		return func(e *entry) bool { return e.key > k }
	}
	marker := &entry{key: k, up: &upload{UploadID: u}}
	found := false
	for _, e := range all {
		if e.key == k && uploadIDOf(e) == u {
			marker.initNano, found = e.initNano, true
			break
		}
	}
	if !found {
		ns, ok := idNanos(u)
		if !ok {
			return func(e *entry) bool { return e.key > k || (e.key == k && uploadIDOf(e) > u) }
		}
		marker.initNano = ns
	}
	return func(e *entry) bool { return e.key > k || (e.key == k && e.up != nil && less(marker, e)) }
}

// encodeResult writes the answer as MinIO does (encodeResponse): the XML
// declaration, then the document, no indentation.
func encodeResult(res *listResult) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(res); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
