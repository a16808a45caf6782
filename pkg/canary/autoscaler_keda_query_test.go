package canary

import "testing"

func TestAPrimaryScaledObjectQueryReadsThePrimary(t *testing.T) {
	tests := []struct {
		name, query, want string
	}{
		{"the target's name becomes the primary's", `sum(rate(http_requests_total{app="podinfo"}[1m]))`, `sum(rate(http_requests_total{app="podinfo-primary"}[1m]))`},
		{"the canary's name becomes the primary's too, as in Flagger", `sum(rate(envoy_cluster_upstream_rq{service="podinfo-canary"}[1m]))`, `sum(rate(envoy_cluster_upstream_rq{service="podinfo-primary"}[1m]))`},
		{"a query already on the primary stays so", `up{deployment="podinfo-primary"}`, `up{deployment="podinfo-primary"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := primaryQuery(tt.query, "podinfo"); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
