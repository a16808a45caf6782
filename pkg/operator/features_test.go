package operator

import (
	"strings"
	"testing"
)

func TestFeatureGatesAreReadAsFluxsControllersReadThem(t *testing.T) {
	tests := []struct {
		name, flag string
		want       FeatureGates
		err        string
	}{
		{"no flag turns nothing on", "", FeatureGates{}, ""},
		{"a gate set true is on", "AdditiveCELDependencyCheck=true", FeatureGates{AdditiveCELDependencyCheck: true}, ""},
		{"a gate set false is off", "AdditiveCELDependencyCheck=false", FeatureGates{}, ""},
		{"an unknown gate is refused by name", "AdditiveCELDependencyCheck=true,CacheSecretsAndConfigMaps=true", FeatureGates{}, "unknown feature gate CacheSecretsAndConfigMaps"},
		{"a value that is no bool is refused", "AdditiveCELDependencyCheck=yes please", FeatureGates{}, `"yes please" is not true or false`},
		{"a gate without a value is refused", "AdditiveCELDependencyCheck", FeatureGates{}, "want Name=true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFeatureGates(tt.flag)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
