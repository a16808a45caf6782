// Package canary is the Canary controller: it observes a Canary, its
// workloads, configs and routes from the informer cache, asks the pure
// state machine in package plan what to do, carries out the actions and
// writes the status once.
package canary

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/alert"
	"sluice.dev/sluice/pkg/canary/plan"
)

// MetricChecker evaluates a Canary's analysis.metrics for one step. It
// answers Pass when every metric is within its range, Fail with the
// metrics that are not, or Hold when a metric has no data under the hold
// policy.
type MetricChecker interface {
	// Prepare resolves and renders every metric before any step, so that
	// a broken template blocks the rollout before it starts, and reports
	// the health of the providers. An error means it could not tell.
	Prepare(ctx context.Context, c *sluicev1beta1.Canary) (plan.MetricsState, error)
	Check(ctx context.Context, c *sluicev1beta1.Canary) plan.Result
}

// Notifier sends a Canary's alerts to its AlertProviders.
type Notifier interface {
	Notify(ctx context.Context, c *sluicev1beta1.Canary, a alert.Canary) error
	// Providers names the AlertProviders that receive c's alerts.
	Providers(c *sluicev1beta1.Canary) []types.NamespacedName
	// Unready says which of them are not ready, by the field that routes
	// to each, and why; "" when all are.
	Unready(ctx context.Context, c *sluicev1beta1.Canary) string
}
