package healthready

// nodeState is what a pool makes of one node: evaluate derives it from the
// node's probe state and its passive ejection. Code compares the
// constants; the names are for display only (status page, JSON, metric
// labels, logs).
//
// Adding a state (say, a node draining before maintenance, or one busy
// answering 503 SlowDown) takes a constant and its row in nodeStates,
// which says whether traffic may go to it and how the pages show it.
type nodeState uint8

const (
	// nodeUnknown: no probe has finished yet. It is routable, so that a
	// freshly started Caddy does not answer 503 while the first probes run.
	// It is only ever a node's first state: no transition leads to it.
	nodeUnknown nodeState = iota
	// nodeReady: the probes say ready and no passive ejection is in force.
	nodeReady
	// nodeNotReady: the probes say the node cannot serve.
	nodeNotReady
	// nodeEjected: failed attempts on real traffic took the node out until
	// rise good probes that started after the ejection; so did an answer
	// saying the node is going away (shutting down, not initialised).
	nodeEjected
	// nodeBusy: ready, but it said it is overloaded (429, 503 SlowDown or
	// ServerBusy) within busy_window: it keeps half its share of new
	// requests. Busy is not dead.
	nodeBusy
	// nodeDrained: an operator drained it (admin API): no new requests,
	// the ones in flight finish.
	nodeDrained

	numNodeStates
)

// nodeStates describes each state.
var nodeStates = [numNodeStates]struct {
	name     string // the status page's JSON, metric labels, logs
	routable bool   // traffic may go to the node
	text     string // the text status page (lua-resty-upstream-healthcheck's words)
	label    string // the HTML page's badge
	badge    string // the HTML page's badge class: ok, bad, warn, unk
}{
	nodeUnknown:  {name: "unknown", routable: true, text: "UNKNOWN", label: "unknown", badge: "unk"},
	nodeReady:    {name: "ready", routable: true, text: "UP", label: "ready", badge: "ok"},
	nodeNotReady: {name: "not_ready", text: "DOWN", label: "not ready", badge: "bad"},
	nodeEjected:  {name: "ejected", text: "DOWN (ejected)", label: "ejected", badge: "bad"},
	nodeBusy:     {name: "busy", routable: true, text: "UP (busy)", label: "busy", badge: "warn"},
	nodeDrained:  {name: "drained", text: "DRAINED", label: "drained", badge: "unk"},
}

// String returns the state's name as the status page and metrics show it.
func (s nodeState) String() string {
	if s < numNodeStates {
		return nodeStates[s].name
	}
	return "invalid"
}

// routable reports whether traffic may go to a node in this state.
func (s nodeState) routable() bool { return s < numNodeStates && nodeStates[s].routable }

// nodeStateOf is the node state the probes' verdict alone gives.
func nodeStateOf(p probeState) nodeState {
	switch p {
	case stateReady:
		return nodeReady
	case stateNotReady:
		return nodeNotReady
	}
	return nodeUnknown
}
