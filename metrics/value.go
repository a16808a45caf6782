package metrics

import (
	"fmt"
	"math"
	"time"
)

// only returns the one item of an answer's list: none is ErrNoValues and
// several are ErrMultipleValues, what naming the items in the error.
func only[T any](items []T, what string) (T, error) {
	var zero T
	switch n := len(items); {
	case n == 0:
		return zero, fmt.Errorf("%w: no %s", ErrNoValues, what)
	case n > 1:
		return zero, fmt.Errorf("%w: %d %s", ErrMultipleValues, n, what)
	}
	return items[0], nil
}

// finiteValue is f, or ErrNoValues when f is NaN or infinite: backends
// answer NaN for a ratio over no traffic, which is no data, not a number
// to compare.
func finiteValue(f float64) (float64, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%w: the value is %v", ErrNoValues, f)
	}
	return f, nil
}

// windowSeconds is a query window in whole seconds, rounded up and at least
// one, for the APIs that take a range in seconds.
func windowSeconds(w time.Duration) int64 {
	return max(1, int64(math.Ceil(w.Seconds())))
}
