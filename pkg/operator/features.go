package operator

import (
	"fmt"
	"strconv"
	"strings"
)

// FeatureGates are the Flux feature gates Sluice honours, set as Flux's
// controllers take them: --feature-gates=Name=true,Other=false.
type FeatureGates struct {
	// AdditiveCELDependencyCheck checks a dependency's Ready condition
	// as well as its readyExpr, instead of the readyExpr alone.
	AdditiveCELDependencyCheck bool
}

// ParseFeatureGates reads a comma-separated list of Name=bool. An unknown
// gate or a value that is no bool is refused, naming it.
func ParseFeatureGates(s string) (FeatureGates, error) {
	var g FeatureGates
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return g, fmt.Errorf("feature gate %q: want Name=true or Name=false", item)
		}
		on, err := strconv.ParseBool(value)
		if err != nil {
			return g, fmt.Errorf("feature gate %s: %q is not true or false", name, value)
		}
		switch name {
		case "AdditiveCELDependencyCheck":
			g.AdditiveCELDependencyCheck = on
		default:
			return g, fmt.Errorf("unknown feature gate %s: the gates are AdditiveCELDependencyCheck", name)
		}
	}
	return g, nil
}
