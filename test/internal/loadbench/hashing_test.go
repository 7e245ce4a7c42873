package loadbench

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMeasureHashQualityOfKetamaAndCaddyQuery(t *testing.T) {
	servers := sixServers()
	for name, p := range map[string]Picker{
		"nginx ketama": &KetamaPicker{},
		"caddy query":  CaddyQueryPicker(),
	} {
		t.Run(name, func(t *testing.T) {
			q := MeasureHashQuality(p, servers, 6000)
			assert.Equal(t, 6000, q.Keys)
			assert.InDelta(t, 1.0/6, q.Ideal, 1e-9)
			assert.GreaterOrEqual(t, q.MaxOverMean, 1.0)
			assert.Less(t, q.MaxOverMean, 1.5, "consistent hashing keeps the busiest server near the mean")
			assert.LessOrEqual(t, q.MinOverMean, 1.0)
			assert.InDelta(t, q.Ideal, q.Moved, 0.01, "only the removed server's keys move")
			assert.Equal(t, 0.0, q.Collateral, "no key whose server stayed may move")
		})
	}
}

// A policy that is not consistent (modulo hashing) must show up as moving
// far more keys than the ideal, or the measurement is worthless.
type moduloPicker struct{}

func (moduloPicker) Pick(servers []string, key string) string {
	var h uint32
	for i := 0; i < len(key); i++ {
		h = h*31 + uint32(key[i])
	}
	return servers[h%uint32(len(servers))]
}

func TestMeasureHashQualityFlagsModuloHashing(t *testing.T) {
	q := MeasureHashQuality(moduloPicker{}, sixServers(), 6000)
	assert.Greater(t, q.Moved, 0.5)
	assert.Greater(t, q.Collateral, 0.4)
}

func TestModulePickerReportsMissingModule(t *testing.T) {
	_, _, err := ModulePicker("no_such_policy_xyz", "")
	assert.ErrorContains(t, err, "no_such_policy_xyz")
}
