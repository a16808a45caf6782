package controlplane

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Eventually polls cond until it holds and fails the test when timeout
// passes first, with the last reason cond gave. Controllers are eventually
// consistent; tests wait for an outcome instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (ok bool, reason string)) {
	t.Helper()
	var reason string
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var ok bool
		ok, reason = cond(ctx)
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not within %s: %s", what, timeout, reason)
	}
}
