package healthready

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStateMachine feeds exact probe sequences: from unknown one result
// decides; between confirmed states rise/fall consecutive results do.
func TestStateMachine(t *testing.T) {
	tests := []struct {
		name       string
		rise, fall int
		seq        string // o = pass, x = fail
		want       []probeState
	}{
		{"first pass decides", 3, 3, "o", []probeState{stateReady}},
		{"first fail decides", 3, 3, "x", []probeState{stateNotReady}},
		{"fall 3 needs three fails", 2, 3, "oxxx", []probeState{stateReady, stateReady, stateReady, stateNotReady}},
		{"rise 2 needs two passes", 2, 3, "xoo", []probeState{stateNotReady, stateNotReady, stateReady}},
		{"a pass resets the fail run", 2, 2, "oxoxox", []probeState{stateReady, stateReady, stateReady, stateReady, stateReady, stateReady}},
		{"a fail resets the pass run", 2, 2, "xoxoo", []probeState{stateNotReady, stateNotReady, stateNotReady, stateNotReady, stateReady}},
		{"rise 1 fall 1 follow each probe", 1, 1, "oxox", []probeState{stateReady, stateNotReady, stateReady, stateNotReady}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProber(probeSpec{Rise: tt.rise, Fall: tt.fall, Interval: time.Second, Timeout: time.Second}, nil, nil)
			require.Equal(t, stateUnknown, p.snapshot().State)
			for i, c := range tt.seq {
				p.record(probeResult{Start: time.Now(), OK: c == 'o'})
				assert.Equal(t, tt.want[i].String(), p.snapshot().State.String(), "after probe %d (%s)", i+1, tt.seq[:i+1])
			}
		})
	}
}

// TestPassedSince: readmission needs rise passes that all started after
// the ejection.
func TestPassedSince(t *testing.T) {
	p := newProber(probeSpec{Rise: 3, Fall: 3}, nil, nil)
	t0 := time.Now()
	p.record(probeResult{Start: t0, OK: true})
	p.record(probeResult{Start: t0.Add(1 * time.Second), OK: true})
	eject := t0.Add(1500 * time.Millisecond)
	p.record(probeResult{Start: t0.Add(2 * time.Second), OK: true})
	assert.False(t, p.passedSince(eject), "two of the three passes started before the ejection")
	p.record(probeResult{Start: t0.Add(3 * time.Second), OK: true})
	assert.False(t, p.passedSince(eject), "one of the last three passes started before the ejection")
	p.record(probeResult{Start: t0.Add(4 * time.Second), OK: true})
	assert.True(t, p.passedSince(eject))
	p.record(probeResult{Start: t0.Add(5 * time.Second), OK: false})
	assert.False(t, p.passedSince(eject), "a failed probe ends the run")
}

func TestPassiveWindow(t *testing.T) {
	s := newPassiveState("x:1")
	t0 := time.Now()
	assert.False(t, s.fail(t0, 3, time.Second))
	assert.False(t, s.fail(t0.Add(500*time.Millisecond), 3, time.Second))
	// the first failure leaves the window before the third arrives
	assert.False(t, s.fail(t0.Add(1200*time.Millisecond), 3, time.Second))
	assert.Equal(t, 2, s.recentFailures(t0.Add(1200*time.Millisecond), time.Second))
	assert.True(t, s.fail(t0.Add(1300*time.Millisecond), 3, time.Second))
	ej, at := s.status()
	assert.True(t, ej)
	assert.Equal(t, t0.Add(1300*time.Millisecond), at)
	assert.False(t, s.fail(t0.Add(1400*time.Millisecond), 3, time.Second), "an ejected address is not ejected again")
	assert.False(t, s.readmit(at.Add(time.Nanosecond)), "readmit names the ejection it ends")
	assert.True(t, s.readmit(at))
}

// TestNodeStateVocabulary: each node state's name, routability and how the
// text and HTML pages show it, all from the one table.
func TestNodeStateVocabulary(t *testing.T) {
	tests := []struct {
		state    nodeState
		name     string
		routable bool
		text     string
		html     string
	}{
		{nodeUnknown, "unknown", true, "UNKNOWN", `<span class="badge unk">unknown</span>`},
		{nodeReady, "ready", true, "UP", `<span class="badge ok">ready</span>`},
		{nodeNotReady, "not_ready", false, "DOWN", `<span class="badge bad">not ready</span>`},
		{nodeEjected, "ejected", false, "DOWN (ejected)", `<span class="badge bad">ejected</span>`},
		{nodeBusy, "busy", true, "UP (busy)", `<span class="badge warn">busy</span>`},
		{nodeDrained, "drained", false, "DRAINED", `<span class="badge unk">drained</span>`},
	}
	require.Len(t, tests, int(numNodeStates), "every state has a row here")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.name, tt.state.String())
			assert.Equal(t, tt.routable, tt.state.routable())
			views := []PoolView{{Name: "p", Nodes: []NodeView{{Upstream: "a:1", Probe: "a:1", State: tt.state.String(), state: tt.state}}}}
			assert.Contains(t, renderText(views), "a:1 "+tt.text+"\n")
			var b strings.Builder
			require.NoError(t, renderHTML(&b, views))
			assert.Contains(t, b.String(), `<tr class="`+tt.name+`">`)
			assert.Contains(t, b.String(), tt.html)
		})
	}
	assert.Equal(t, "invalid", numNodeStates.String())
	assert.False(t, numNodeStates.routable())
}
