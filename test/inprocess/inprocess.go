// Package inprocess runs the operator inside a test process, watching one
// namespace, so that tests can run several side by side and stop and
// restart them at will.
package inprocess

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"sluice.dev/sluice/pkg/operator"
)

// Start runs the operator against cfg, limited to namespace, with no
// leader election and no listeners, until the returned stop is called or
// the test ends. configure may change further options.
func Start(t testing.TB, cfg *rest.Config, namespace string, log logr.Logger, configure ...func(*operator.Options)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := operator.DefaultOptions()
	for _, c := range configure {
		c(&opts)
	}
	opts.Namespace, opts.LeaderElection = namespace, false
	opts.MetricsBindAddress, opts.HealthProbeBindAddress, opts.ReceiverBindAddress = "0", "0", "0"
	opts.GracefulShutdownTimeout = 5 * time.Second
	mgr, err := operator.New(ctx, cfg, opts, log)
	if err != nil {
		cancel()
		t.Fatalf("build the operator: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("operator: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
