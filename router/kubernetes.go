package router

import (
	"context"
	"fmt"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// Kubernetes routes with plain Kubernetes Services (provider kubernetes).
// The apex Service always selects the primary, so the canary never gets
// live traffic: it supports blue/green, where the canary is checked apart
// from production and promotion is the switch.
type Kubernetes struct {
	Services Services
}

// Capabilities are none: Services cannot split, match or mirror traffic.
func (k *Kubernetes) Capabilities() traffic.Capabilities { return traffic.Capabilities{} }

// Initialize creates the -primary and -canary Services.
func (k *Kubernetes) Initialize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return k.Services.Initialize(ctx, c)
}

// Reconcile points the apex Service at the primary.
func (k *Kubernetes) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	return k.Services.TakeOver(ctx, c)
}

// SetRoutes accepts only all traffic on the primary, the one split
// Services can express.
func (k *Kubernetes) SetRoutes(_ context.Context, _ *sluicev1beta1.Canary, r traffic.Routes) error {
	if !r.IsPrimaryOnly() {
		return fmt.Errorf("the kubernetes provider cannot route %s: Services send all traffic to the primary", r)
	}
	return nil
}

// Routes is always all traffic on the primary.
func (k *Kubernetes) Routes(context.Context, *sluicev1beta1.Canary) (traffic.Routes, error) {
	return traffic.PrimaryOnly(), nil
}

// GoldenSignals use the http_request_duration_seconds histogram that the
// application exports, by pod of the target.
func (k *Kubernetes) GoldenSignals() traffic.GoldenSignals { return appHistogramSignals() }

// appHistogramSignals read the application's own request histogram, for
// routers whose proxy exports nothing per canary.
func appHistogramSignals() traffic.GoldenSignals {
	const pods = `namespace="{{ namespace }}", pod=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`
	return traffic.GoldenSignals{
		SuccessRate: `sum(rate(http_request_duration_seconds_count{` + pods + `, status!~"5.*"}[{{ interval }}]))
/ sum(rate(http_request_duration_seconds_count{` + pods + `}[{{ interval }}])) * 100`,
		Duration: `histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{` + pods + `}[{{ interval }}])) by (le)) * 1000`,
	}
}

// Finalize points the apex Service back at the target.
func (k *Kubernetes) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	return k.Services.Finalize(ctx, c)
}
