package transparency

import (
	"os"
	"testing"
	"time"
)

// TestTransparency runs every check against one MinIO and two proxies.
func TestTransparency(t *testing.T) {
	e := setupEnv(t)
	var rows []matrixResult
	t.Run("raw", func(t *testing.T) { rows = testRawMatrix(t, e) })
	t.Run("minio-go", func(t *testing.T) { testMinioGo(t, e) })
	t.Run("select", func(t *testing.T) { testSelect(t, e) })
	// ListenBucketNotification: this MinIO build holds the response back
	// even direct (see docs/testing.md, Transparency), so the check runs on request.
	if os.Getenv("TRANSPARENCY_LISTEN") == "1" {
		t.Run("listen", func(t *testing.T) {
			for _, tg := range e.targets() {
				t.Run(tg.Name, func(t *testing.T) { testListen(t, e, tg, 5*time.Second) })
			}
		})
	}
	t.Run("boto3", func(t *testing.T) { testBoto3(t, e) })
	t.Run("awscli", func(t *testing.T) { testAWSCLI(t, e) })
	t.Run("large-put", func(t *testing.T) { testLargePut(t, e) })
	report(t, e, rows)
}

// report logs the matrix as a Markdown table (copied into
// docs/testing.md, Transparency).
func report(t *testing.T, e *env, rows []matrixResult) {
	out := "\n| operation | ours | stock Caddy |\n|---|---|---|\n"
	cell := func(d []string) string {
		if len(d) == 0 {
			return "same"
		}
		s := ""
		for i, x := range d {
			if i > 0 {
				s += "; "
			}
			s += x
		}
		return s
	}
	for _, r := range rows {
		out += "| " + r.Op + " | " + cell(r.Diffs["ours"]) + " | " + cell(r.Diffs["stock"]) + " |\n"
	}
	t.Log(out)
}
