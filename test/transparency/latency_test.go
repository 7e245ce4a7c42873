package transparency

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkBoto3Latency measures per-operation latency as boto3 sees it,
// direct to a MinIO node, through our proxy and through stock Caddy,
// interleaved (scripts/boto3_latency.py). The iteration count is
// TRANSPARENCY_LATENCY_N (default 200), independent of b.N:
//
//	go test -run '^$' -bench Boto3Latency -benchtime 1x ./test/transparency/
//
// It reports the median and p99 per target and operation, and the median
// our proxy adds ("ours-added-ms"); the target is < 1 ms.
func BenchmarkBoto3Latency(b *testing.B) {
	requireTools(b, false)
	n := 200
	if s := os.Getenv("TRANSPARENCY_LATENCY_N"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(b, err, "TRANSPARENCY_LATENCY_N=%q", s)
	}
	e := setupEnv(b)
	b.ResetTimer()
	var res map[string]map[string][]float64
	for i := 0; i < b.N; i++ {
		cmd := exec.Command("python3", "scripts/boto3_latency.py", e.Bucket, strconv.Itoa(n),
			"direct=http://"+e.Direct.Addr, "ours=http://"+e.Ours.Addr, "stock=http://"+e.Stock.Addr)
		cmd.Env = clientEnv(b)
		out, err := cmd.Output()
		require.NoError(b, err, "boto3_latency.py")
		require.NoError(b, json.Unmarshal(out, &res))
	}
	b.StopTimer()
	ops := make([]string, 0, len(res["direct"]))
	for op := range res["direct"] {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n%d iterations per operation and target (boto3, 4-node MinIO on loopback)\n\n", n)
	tbl.WriteString("| operation | direct median / p99 (ms) | ours median / p99 (ms) | stock Caddy median / p99 (ms) | ours adds (median, ms) |\n|---|---|---|---|---|\n")
	for _, op := range ops {
		d, o, s := res["direct"][op], res["ours"][op], res["stock"][op]
		added := quantile(o, 0.5) - quantile(d, 0.5)
		fmt.Fprintf(&tbl, "| %s | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %+.2f |\n", op,
			quantile(d, 0.5), quantile(d, 0.99), quantile(o, 0.5), quantile(o, 0.99),
			quantile(s, 0.5), quantile(s, 0.99), added)
		unit := strings.ReplaceAll(strings.ToLower(op), " ", "-")
		b.ReportMetric(added, unit+"-ours-added-ms")
	}
	// Printed, not b.Log: go test cuts benchmark logs at 10 lines.
	fmt.Print(tbl.String())
}

// quantile returns the q-quantile (nearest rank) of xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(q*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}
