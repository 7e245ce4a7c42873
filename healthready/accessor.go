package healthready

// PoolUpstreams reports the newest provisioned pool named name (its `name`
// option): the dial address of every configured upstream in config order,
// and for each whether it is routable now: ready or not probed yet, and not
// passively ejected. A pool that fails open still reports its unready nodes
// as not routable. ok is false when no pool of that name is provisioned.
//
// It only reads state; other modules (s3_list_uploads) use it to reach
// every node of a pool at request time.
func PoolUpstreams(name string) (upstreams []string, routable []bool, ok bool) {
	if name == "" {
		return nil, nil, false
	}
	pools := currentPools(name)
	if len(pools) == 0 {
		return nil, nil, false
	}
	h := pools[0]
	h.evalMu.Lock()
	defer h.evalMu.Unlock()
	upstreams = make([]string, len(h.nodes))
	routable = make([]bool, len(h.nodes))
	for i, n := range h.nodes {
		upstreams[i] = n.dial
		routable[i] = n.state.routable()
	}
	return upstreams, routable, true
}
