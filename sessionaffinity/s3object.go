package sessionaffinity

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/minio-lb/caddy-minio-lb/internal/s3op"
)

// The s3_object source keys a plain single-object request (GET, HEAD, PUT
// or DELETE of one object, no subresource, no multipart parameter) on its
// bucket and object, so that one client's traffic over many objects spreads
// over every node, while the requests of one object still meet on one node.
// What has no object (listings, bucket operations) is left to the next
// source, normally the client fingerprint.
const typeS3Object = "s3_object"

// defaultObjectBoundedLoad is the bounded-load factor of s3_object keys
// when the source sets none: a node already at its fair share of the
// requests in flight, ceil((in flight + 1) / nodes), passes an object key
// on to the next node of the key's rendezvous order. One heavy client's 16
// requests then sit 4/4/4/4 on 4 nodes, as least_conn puts them, where
// 1.25 allows 5/5/5/1 (measured: docs/s3-multipart-and-spread.md). The keys
// of the other sources (sessionid, multipart, fingerprint) keep the
// policy's bounded_load (off by default), so sessions and multipart uploads
// never move because of load.
const defaultObjectBoundedLoad = 1.0

// boundedLoadOff is the JSON value of a source's bounded_load that turns
// bounded load off for that source (Caddyfile: `bounded_load off`).
const boundedLoadOff = -1

// hashS3Object writes bucket "/" object for a plain object request; any
// other request yields no key. Virtual-host style requests (a Host of
// `<bucket>.<domain>` for a configured domain) get the same key as the path
// style request of the same object. Classification is s3op's: one pass over
// the raw query, no allocation.
func (s *source) hashS3Object(r *http.Request, h *keyHasher) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
	default:
		return false
	}
	path := r.URL.Path
	switch s3op.Classify(r.Method, r.Host, path, r.URL.RawQuery, s.domains) {
	case s3op.GetObject, s3op.HeadObject, s3op.PutObject, s3op.DeleteObject:
	default:
		return false
	}
	bucket, object := s3op.BucketObject(r.Host, path, s.domains)
	h.writeString(bucket)
	h.writeByte('/')
	h.writeString(object)
	return true
}

// validateS3Object checks the fields of an s3_object source.
func validateS3Object(src Source) error {
	for _, d := range src.Domains {
		if strings.Trim(d, ".") == "" {
			return fmt.Errorf("s3_object: empty domain in %q", src.Domains)
		}
	}
	return validateSourceBoundedLoad(src)
}

// validateSourceBoundedLoad checks a source's own bounded_load: 0 (the
// default), -1 (off) or a finite factor >= 1; s3_object sources only.
// Unlike the policy's bounded_load (> 1), 1 is allowed: with the capacity
// rounded up, ceil((in flight + 1) / n) nodes' worth of room always
// exists, and object keys need no stickiness beyond what balance allows.
func validateSourceBoundedLoad(src Source) error {
	b := src.BoundedLoad
	if b == 0 {
		return nil
	}
	if src.Type != typeS3Object {
		return fmt.Errorf("%s: bounded_load applies to s3_object sources only (the policy's bounded_load covers the others)", src.Type)
	}
	if b != boundedLoadOff && (!(b >= 1) || math.IsInf(b, 0)) {
		return fmt.Errorf("s3_object: bounded_load must be a factor >= 1 or -1 (off), got %v", b)
	}
	return nil
}

// compileS3Object compiles an s3_object source (already validated).
func compileS3Object(src Source) source {
	c := source{kind: kindS3Object, labels: []any{typeS3Object}}
	for _, d := range src.Domains {
		c.domains = append(c.domains, "."+strings.ToLower(strings.Trim(d, ".")))
	}
	switch src.BoundedLoad {
	case 0:
		c.boundedLoad = defaultObjectBoundedLoad
	case boundedLoadOff:
		c.boundedLoad = 0
	default:
		c.boundedLoad = src.BoundedLoad
	}
	return c
}

// parseS3Object reads the Caddyfile form of the source:
//
//	s3_object [{
//	    domains <domains...>
//	    bounded_load <factor>|off
//	}]
func parseS3Object(d *caddyfile.Dispenser) (Source, error) {
	src := Source{Type: typeS3Object}
	if d.NextArg() {
		return src, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "domains":
			doms := d.RemainingArgs()
			if len(doms) == 0 {
				return src, d.ArgErr()
			}
			src.Domains = append(src.Domains, doms...)
		case "bounded_load":
			if !d.NextArg() {
				return src, d.ArgErr()
			}
			if d.Val() == "off" {
				src.BoundedLoad = boundedLoadOff
			} else {
				f, err := strconv.ParseFloat(d.Val(), 64)
				if err != nil || !(f >= 1) || f > 1e9 {
					return src, d.Errf("s3_object: bounded_load must be a factor >= 1 or off, got %q", d.Val())
				}
				src.BoundedLoad = f
			}
			if d.NextArg() {
				return src, d.ArgErr()
			}
		default:
			return src, d.Errf("s3_object: unrecognized option %q", d.Val())
		}
	}
	return src, nil
}
