package miniotransport

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClassify: what each of MinIO's answers says about the node, and the
// client still gets the whole body.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		header   map[string]string
		body     string
		want     refusal
		wantCode string
	}{
		{"200", 200, nil, "ok", notRefused, ""},
		{"shutdown text", 503, nil, "http: Server closed\n", refusedGoingAway, ""},
		{"offline header", 200, map[string]string{"X-Minio-Server-Status": "offline"}, "", refusedGoingAway, ""},
		{"not initialized", 503, nil, s3Error("XMinioServerNotInitialized", "x"), refusedGoingAway, "XMinioServerNotInitialized"},
		{"ServerBusy", 503, nil, s3Error("ServerBusy", "x"), refusedBusy, "ServerBusy"},
		{"SlowDownWrite", 503, nil, s3Error("SlowDownWrite", "x"), refusedBusy, "SlowDownWrite"},
		{"lock timeout", 503, nil, s3Error("RequestTimeout", "A timeout occurred while trying to lock a resource, please reduce your request rate"), refusedBusy, "RequestTimeout"},
		{"SlowDown on a HEAD", 503, map[string]string{"X-Minio-Error-Code": "SlowDown"}, "", refusedBusy, "SlowDown"},
		{"429 without a body", 429, nil, "", refusedBusy, ""},
		{"other 503", 503, nil, s3Error("InternalError", "x"), notRefused, "InternalError"},
		{"499 of a node shutting down", 499, nil, s3Error("ClientDisconnected", "Client disconnected before response was ready"), refusedGoingAway, "ClientDisconnected"},
		{"bare 499 of a node shutting down (its request limiter)", 499, map[string]string{"X-Ratelimit-Limit": "3384"}, "", refusedGoingAway, ""},
		{"499 with another code", 499, nil, s3Error("InternalError", "x"), notRefused, "InternalError"},
		{"500", 500, nil, s3Error("RequestTimeout", "x"), notRefused, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body)), ContentLength: int64(len(tc.body))}
			for k, v := range tc.header {
				resp.Header.Set(k, v)
			}
			got, code := classify(resp)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantCode, code)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tc.body, string(b), "the client gets the whole answer")
		})
	}
}
