package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"sluice.dev/sluice/pkg/cli"
)

// TestABootstrapWaitEndsAtOnceOnAReadThatWaitingCannotMend runs the
// waits of bootstrap's last step as a user RBAC grants nothing: the
// Forbidden read ends the wait at once, and the error says so, instead of
// a wait to the timeout that asks whether the operator runs.
func TestABootstrapWaitEndsAtOnceOnAReadThatWaitingCannotMend(t *testing.T) {
	nobody, err := cp.KubeconfigFor("bootstrap-nobody", []string{"system:authenticated"})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"GitRepository", "Kustomization"} {
		t.Run("the "+kind+" wait", func(t *testing.T) {
			var progress bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			started := time.Now()
			err := cli.BootstrapWaits(nobody, "sluice-system", &progress)[kind](ctx, "main@sha1:0123456789abcdef0123456789abcdef01234567")
			if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "read "+kind+" sluice-system/sluice-system") {
				t.Fatalf("error %v, want the Forbidden read named", err)
			}
			if strings.Contains(err.Error(), "is the operator running") {
				t.Errorf("error %v blames the operator", err)
			}
			if waited := time.Since(started); waited > 10*time.Second {
				t.Errorf("the wait took %s, want it to end at the first read", waited)
			}
		})
	}
}
