package transparency

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio-lb/caddy-minio-lb/test/internal/miniocluster"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// objectView is what minio-go reports about an object.
type objectView struct {
	ETag, ContentType, ChecksumCRC32 string
	Size                             int64
	UserMetadata                     map[string]string
	BodyMD5                          string
}

// testMinioGo uploads with minio-go the ways it really uploads (streaming
// signature, trailing checksums, multipart) and reads back what minio-go
// users see.
func testMinioGo(t *testing.T, e *env) {
	data := payload(11<<20+123, 3) // 3 parts of 5 MiB in the multipart case
	cases := []struct {
		name     string
		trailing bool
		opts     minio.PutObjectOptions
		size     int64
	}{
		{"PutObject streaming signature (aws-chunked)", false, minio.PutObjectOptions{
			UserMetadata: map[string]string{"MixedCase": "minio-go"}, ContentType: "text/x-test", DisableMultipart: true}, 300 << 10},
		{"PutObject trailing CRC32 (STREAMING-UNSIGNED-PAYLOAD-TRAILER)", true, minio.PutObjectOptions{
			UserMetadata: map[string]string{"MixedCase": "trailer"}, Checksum: minio.ChecksumCRC32, DisableMultipart: true}, 300 << 10},
		{"PutObject multipart, 3 parts", false, minio.PutObjectOptions{
			UserMetadata: map[string]string{"MixedCase": "multipart"}, PartSize: 5 << 20}, int64(len(data))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ref objectView
			for _, tg := range e.targets() {
				cl := minioClient(t, tg, func(o *minio.Options) { o.TrailingHeaders = c.trailing })
				key := "minio-go/" + strings.ReplaceAll(c.name, " ", "-")
				// MinIO itself can lack write quorum for some seconds on a
				// loaded machine and answer 503 SlowDownWrite, through any
				// target alike, for longer than minio-go's own retries
				// last (seen once through ours, one core burned). What is
				// compared here is the object once written.
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				refused := -1
				err := miniocluster.RetrySlowDown(ctx, func() error {
					refused++
					_, err := cl.PutObject(ctx, e.Bucket, key, bytes.NewReader(data[:c.size]), c.size, c.opts)
					return err
				})
				cancel()
				require.NoError(t, err, tg.Name)
				if refused > 0 {
					t.Logf("%s: MinIO answered 503 to minio-go's PutObject (and its own retries) %d times before taking it", tg.Name, refused)
				}
				st, err := cl.StatObject(t.Context(), e.Bucket, key, minio.StatObjectOptions{Checksum: true})
				require.NoError(t, err, tg.Name)
				obj, err := cl.GetObject(t.Context(), e.Bucket, key, minio.GetObjectOptions{})
				require.NoError(t, err)
				h := md5.New()
				_, err = io.Copy(h, obj)
				require.NoError(t, err)
				obj.Close()
				v := objectView{ETag: st.ETag, ContentType: st.ContentType, ChecksumCRC32: st.ChecksumCRC32,
					Size: st.Size, UserMetadata: st.UserMetadata, BodyMD5: hex.EncodeToString(h.Sum(nil))}
				want := md5.Sum(data[:c.size])
				require.Equal(t, hex.EncodeToString(want[:]), v.BodyMD5, "%s: body read back", tg.Name)
				if tg.Pid == 0 {
					ref = v
					continue
				}
				assert.Equal(t, ref, v, "%s: minio-go sees another object than direct", tg.Name)
			}
		})
	}
}

// testSelect runs a CSV SelectObjectContent (a long-lived event stream
// response) direct and through the proxies.
func testSelect(t *testing.T, e *env) {
	var csv strings.Builder
	csv.WriteString("name,n\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&csv, "row%d,%d\n", i, i)
	}
	direct := minioClient(t, e.Direct)
	_, err := direct.PutObject(t.Context(), e.Bucket, "select/data.csv", strings.NewReader(csv.String()),
		int64(csv.Len()), minio.PutObjectOptions{ContentType: "text/csv"})
	require.NoError(t, err)
	opts := minio.SelectObjectOptions{
		Expression:     "select s.name from S3Object s where cast(s.n as int) % 100 = 7",
		ExpressionType: minio.QueryExpressionTypeSQL,
		InputSerialization: minio.SelectObjectInputSerialization{
			CSV: &minio.CSVInputOptions{FileHeaderInfo: minio.CSVFileHeaderInfoUse},
		},
		OutputSerialization: minio.SelectObjectOutputSerialization{CSV: &minio.CSVOutputOptions{}},
	}
	var ref string
	for _, tg := range e.targets() {
		res, err := minioClient(t, tg).SelectObjectContent(t.Context(), e.Bucket, "select/data.csv", opts)
		require.NoError(t, err, tg.Name)
		out, err := io.ReadAll(res)
		res.Close()
		require.NoError(t, err, tg.Name)
		if tg.Pid == 0 {
			ref = string(out)
			require.Equal(t, 20, strings.Count(ref, "\n"), "direct select output: %q", ref)
			continue
		}
		assert.Equal(t, ref, string(out), "%s: select output", tg.Name)
	}
}

// testListen proves that a ListenBucketNotification stream passes the proxy
// as it is written (no response buffering) and stays open across idle time.
// MinIO writes a `{"Records":null}` line every `ping` seconds; with ping=1
// every line must reach the client about a second after the previous one,
// on one connection, for longer than the idle gap. It also PUTs an object
// mid-stream and reports whether its event arrived.
//
// The request goes without "Accept-Encoding: gzip", as minio-go sends it:
// with gzip MinIO's own compression middleware holds the stream back (direct
// too).
func testListen(t *testing.T, e *env, tg target, idle time.Duration) (eventSeen bool) {
	ctx, cancel := context.WithTimeout(t.Context(), idle+20*time.Second)
	defer cancel()
	prefix := "listen-" + tg.Name + "/"
	req := newRequest(tg, http.MethodGet, "/"+e.Bucket+"?events=s3%3AObjectCreated%3A%2A&ping=1&prefix="+
		url.QueryEscape(prefix)+"&suffix=", nil)
	req = signV4(req, nil, accessKey, secretKey).WithContext(ctx)
	var dials atomic.Int32
	cl := &http.Client{Transport: &http.Transport{DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	start := time.Now()
	resp, err := cl.Do(req)
	require.NoError(t, err, tg.Name)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, tg.Name)
	type line struct {
		at   time.Duration
		text string
	}
	lines := make(chan line, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			if txt := strings.TrimSpace(sc.Text()); txt != "" {
				lines <- line{time.Since(start), txt}
			}
		}
	}()
	writer := minioClient(t, e.Direct)
	var got []line
	last := time.Duration(0)
	maxGap := time.Duration(0)
	putDone := false
	for time.Since(start) < idle+2*time.Second {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "%s: the listen stream closed after %s", tg.Name, time.Since(start))
			got = append(got, l)
			if gap := l.at - last; gap > maxGap {
				maxGap = gap
			}
			last = l.at
			if strings.Contains(l.text, url.QueryEscape(prefix+"event")) || strings.Contains(l.text, prefix+"event") {
				eventSeen = true
			}
		case <-time.After(3 * time.Second):
			require.Failf(t, "stream stalled", "%s: nothing for 3 s after %d lines (ping=1)", tg.Name, len(got))
		}
		if !putDone && time.Since(start) > idle/2 {
			putDone = true
			_, err := writer.PutObject(ctx, e.Bucket, prefix+"event", strings.NewReader("x"), 1, minio.PutObjectOptions{})
			require.NoError(t, err)
		}
	}
	assert.GreaterOrEqual(t, len(got), int(idle/time.Second), "%s: ping lines in %s", tg.Name, idle)
	assert.Less(t, maxGap, 2500*time.Millisecond, "%s: a ping line was held back", tg.Name)
	assert.Equal(t, int32(1), dials.Load(), "%s: the listen stream reconnected", tg.Name)
	t.Logf("%s: %d lines in %s, first after %s, largest gap %s, event of a mid-stream PUT seen: %v",
		tg.Name, len(got), time.Since(start).Round(time.Millisecond), got[0].at.Round(time.Millisecond),
		maxGap.Round(time.Millisecond), eventSeen)
	return eventSeen
}

// largeSize is the size of the large PUT: TRANSPARENCY_LARGE_BYTES, default 1 GiB.
func largeSize(tb testing.TB) int64 {
	if s := os.Getenv("TRANSPARENCY_LARGE_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		require.NoError(tb, err, "TRANSPARENCY_LARGE_BYTES=%q", s)
		return n
	}
	return 1 << 30
}

// patternReader yields n bytes of a repeating 1 MiB pattern without ever
// holding more than that pattern.
type patternReader struct {
	pattern []byte
	off, n  int64
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if rem := p.n - p.off; int64(len(b)) > rem {
		b = b[:rem]
	}
	i := int(p.off % int64(len(p.pattern)))
	n := copy(b, p.pattern[i:])
	p.off += int64(n)
	return n, nil
}

// testLargePut streams one large object through our proxy and checks that
// Caddy's peak RSS stays far below the object size (nothing buffers it) and
// that the stored object is intact (ETag = MD5 of what was sent).
func testLargePut(t *testing.T, e *env) {
	size := largeSize(t)
	const rssLimit = 200 << 20
	before, err := peakRSS(e.Ours.Pid)
	require.NoError(t, err)
	h := md5.New()
	body := io.TeeReader(&patternReader{pattern: payload(1<<20, 4), n: size}, h)
	req := newRequest(e.Ours, http.MethodPut, "/"+e.Bucket+"/large/object", nil)
	req.Body, req.ContentLength = io.NopCloser(body), size
	start := time.Now()
	r, err := do(rawRequest{Request: signV4Unsigned(req, accessKey, secretKey)})
	elapsed := time.Since(start)
	require.NoError(t, err)
	require.Equal(t, 200, r.Status, "large PUT: %s", r.Body)
	assert.Equal(t, `"`+hex.EncodeToString(h.Sum(nil))+`"`, r.Header.Get("ETag"), "stored object differs from the bytes sent")
	after, err := peakRSS(e.Ours.Pid)
	require.NoError(t, err)
	t.Logf("large PUT through our proxy: %d MiB in %s (%.0f MiB/s); Caddy VmHWM %d MiB before, %d MiB after",
		size>>20, elapsed.Round(time.Millisecond), float64(size)/(1<<20)/elapsed.Seconds(), before>>20, after>>20)
	assert.Less(t, after, int64(rssLimit), "Caddy's peak RSS during a %d MiB PUT", size>>20)
	if size >= 4*rssLimit {
		assert.Less(t, after, size/4, "Caddy's peak RSS is not far below the object size")
	}
}
