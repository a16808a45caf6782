package helmrelease

import (
	"maps"
	"testing"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// TestTheHelmChartTakesTheHelmReleasesShard: the labels a sharded replica
// selects by are the HelmRelease's on its HelmChart, over
// spec.chart.metadata's, so that one replica serves both.
func TestTheHelmChartTakesTheHelmReleasesShard(t *testing.T) {
	const key = "sharding.sluice.dev/key"
	tests := []struct {
		name           string
		release, chart map[string]string
		keys           []string
		want           map[string]string
	}{
		{"the HelmRelease's shard is copied", map[string]string{key: "a"}, map[string]string{"team": "web"}, []string{key},
			map[string]string{key: "a", "team": "web"}},
		{"it wins over the template's", map[string]string{key: "a"}, map[string]string{key: "b"}, []string{key}, map[string]string{key: "a"}},
		{"a HelmRelease with none leaves the chart with none", nil, map[string]string{key: "b"}, []string{key}, map[string]string{}},
		{"other labels the selector reads are copied too", map[string]string{key: "a", "team": "web", "tier": "x"}, nil, []string{key, "team"},
			map[string]string{key: "a", "team": "web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr := &syncv2.HelmRelease{}
			hr.Labels = tt.release
			chart := maps.Clone(tt.chart)
			if chart == nil {
				chart = map[string]string{}
			}
			if got := withShardLabels(chart, hr, tt.keys); !maps.Equal(got, tt.want) {
				t.Errorf("labels %v, want %v", got, tt.want)
			}
		})
	}
}
