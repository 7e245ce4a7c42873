//go:build race

package spread

// raceEnabled: the race detector instruments this test binary, which
// carries the client and the four links.
const raceEnabled = true
