package metrics

import (
	"reflect"
	"strings"
	"testing"
)

func TestKeptnQueriesAreReadAsFlaggerReadsThem(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  keptnQuery
		err   string
	}{
		{"a KeptnMetric names its namespace and name", "keptnmetric/shop/error-rate", keptnQuery{kind: "keptnmetric", namespace: "shop", name: "error-rate"}, ""},
		{"the plural and upper case are accepted", "KeptnMetrics/Shop/Latency", keptnQuery{kind: "keptnmetric", namespace: "shop", name: "latency"}, ""},
		{"an analysis defaults to the last minute", "analysis/shop/slo", keptnQuery{kind: "analysis", namespace: "shop", name: "slo", timeframe: "1m"}, ""},
		{"an analysis takes a timeframe and arguments", "analyses/shop/slo/5m/workload=podinfo;env=prod",
			keptnQuery{kind: "analysis", namespace: "shop", name: "slo", timeframe: "5m", args: map[string]string{"workload": "podinfo", "env": "prod"}}, ""},
		{"too few parts are refused", "keptnmetric/shop", keptnQuery{}, "is not keptnmetric/"},
		{"an unknown kind is refused", "metric/shop/x", keptnQuery{}, "is not keptnmetric/"},
		{"a KeptnMetric takes no more parts", "keptnmetric/shop/x/1m", keptnQuery{}, "is not keptnmetric/"},
		{"a timeframe must be a duration", "analysis/shop/slo/soon", keptnQuery{}, `timeframe "soon"`},
		{"an argument must be key=value", "analysis/shop/slo/1m/workload", keptnQuery{}, `argument "workload"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKeptnQuery(tt.query)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %+v, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestKeptnNeedsTheOperatorsClient(t *testing.T) {
	if _, err := New(Config{Type: "keptn"}); err == nil || !strings.Contains(err.Error(), "no Kubernetes client") {
		t.Fatalf("got %v, want an error saying there is no client", err)
	}
}
