package dashboard

import (
	"fmt"
	"testing"
)

func TestAMetricAxisIsLabelledInRoundNumbers(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi float64
		want   []string
	}{
		{"latencies under a 500 ms maximum", 95.9, 500, []string{"0", "200", "400", "600"}},
		{"a success rate just above a 99 minimum", 99, 100, []string{"99", "99.5", "100"}},
		{"one value alone", 42, 42, []string{"35", "40", "45", "50"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := niceAxis(tt.lo, tt.hi)
			if a.lo < 0 && tt.lo >= 0 {
				a.lo = 0
			}
			var got []string
			for _, tick := range a.ticks() {
				got = append(got, tick.Label)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("ticks %v, want %v", got, tt.want)
			}
		})
	}
}
