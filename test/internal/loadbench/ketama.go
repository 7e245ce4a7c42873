package loadbench

import (
	"encoding/binary"
	"hash/crc32"
	"sort"
	"strings"
)

// KetamaRing is nginx's `hash $key consistent` ring, rebuilt in Go as
// ngx_http_upstream_init_chash builds it (nginx 1.22): for every server,
// base = crc32(host "\0" port), then weight*160 points, point j being
// crc32(host "\0" port prev) where prev is the previous point's hash as 4
// little-endian bytes (0 for the first). Points are sorted and points with
// equal hashes deduplicated (the first wins). A key maps to the first point
// whose hash is >= crc32(key), wrapping around.
type KetamaRing struct {
	points []ketamaPoint
}

type ketamaPoint struct {
	hash   uint32
	server string
}

// ketamaPointsPerWeight is nginx's fixed number of points per weight unit.
const ketamaPointsPerWeight = 160

// NewKetamaRing builds the ring of the given "host:port" servers, each of
// weight 1 (the seed gives no weights).
func NewKetamaRing(servers []string) *KetamaRing {
	r := &KetamaRing{}
	for _, s := range servers {
		host, port := splitNginxServer(s)
		base := crc32.ChecksumIEEE([]byte(host + "\x00" + port))
		var prev [4]byte
		for j := 0; j < ketamaPointsPerWeight; j++ {
			h := crc32.Update(base, crc32.IEEETable, prev[:])
			r.points = append(r.points, ketamaPoint{hash: h, server: s})
			binary.LittleEndian.PutUint32(prev[:], h)
		}
	}
	// nginx uses qsort (not stable); equal hashes are vanishingly rare and
	// then only one of them survives either way.
	sort.SliceStable(r.points, func(i, j int) bool { return r.points[i].hash < r.points[j].hash })
	dedup := r.points[:0]
	for i, p := range r.points {
		if i > 0 && p.hash == dedup[len(dedup)-1].hash {
			continue
		}
		dedup = append(dedup, p)
	}
	r.points = dedup
	return r
}

// splitNginxServer splits a server name as nginx does: the port is the run
// of digits after the last ':', if any.
func splitNginxServer(s string) (host, port string) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, ""
	}
	for _, c := range s[i+1:] {
		if c < '0' || c > '9' {
			return s, ""
		}
	}
	return s[:i], s[i+1:]
}

// Points is the number of points on the ring.
func (r *KetamaRing) Points() int { return len(r.points) }

// Lookup returns the server for key, skipping servers for which down
// returns true by walking on along the ring (as nginx does for a peer that
// is down or has failed, up to 20 steps; past that nginx falls back to
// round robin, which this returns as "").
func (r *KetamaRing) Lookup(key string, down func(string) bool) string {
	if len(r.points) == 0 {
		return ""
	}
	h := crc32.ChecksumIEEE([]byte(key))
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i].hash >= h })
	for tries := 0; tries <= 20; tries++ {
		s := r.points[(i+tries)%len(r.points)].server
		if down == nil || !down(s) {
			return s
		}
	}
	return ""
}
