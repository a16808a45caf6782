package canary

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/canary/plan"
)

// Recorder exports Prometheus metrics about Canaries.
type Recorder struct {
	status       *prometheus.GaugeVec
	weight       *prometheus.GaugeVec
	failedChecks *prometheus.GaugeVec
	duration     *prometheus.HistogramVec
	releases     *prometheus.CounterVec
	// seen remembers which Canaries have series, to delete them with the
	// Canary.
	seen sync.Map
}

// NewRecorder registers the metrics with reg.
func NewRecorder(reg prometheus.Registerer) (*Recorder, error) {
	r := &Recorder{
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_status",
			Help: "Canary status: 0 rolling out, 1 promoted or idle, 2 failed.",
		}, []string{"name", "namespace"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_weight",
			Help: "Percentage of traffic on the primary and on the canary.",
		}, []string{"name", "namespace", "workload"}),
		failedChecks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_canary_failed_checks",
			Help: "Failed checks of the current analysis.",
		}, []string{"name", "namespace"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_canary_release_duration_seconds",
			Help:    "Duration of whole releases, from the new revision to promotion or rollback.",
			Buckets: prometheus.ExponentialBuckets(15, 2, 11),
		}, []string{"namespace", "strategy", "result"}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_canary_releases_total",
			Help: "Finished releases by strategy and result (succeeded, skipped, failed).",
		}, []string{"name", "namespace", "strategy", "result"}),
	}
	var err error
	if r.status, err = register(reg, r.status); err != nil {
		return nil, err
	}
	if r.weight, err = register(reg, r.weight); err != nil {
		return nil, err
	}
	if r.failedChecks, err = register(reg, r.failedChecks); err != nil {
		return nil, err
	}
	if r.duration, err = register(reg, r.duration); err != nil {
		return nil, err
	}
	if r.releases, err = register(reg, r.releases); err != nil {
		return nil, err
	}
	return r, nil
}

// register registers a collector, or returns the one already registered
// under its name, so that several reconcilers in one process share series.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("register metrics: %w", err)
	}
	return c, nil
}

// observe sets a Canary's gauges from its status.
func (r *Recorder) observe(c *sluicev1beta1.Canary) {
	r.seen.Store(types.NamespacedName{Namespace: c.Namespace, Name: c.Name}, true)
	s := c.Status
	status := 0.0
	switch s.Phase {
	case sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseSucceeded:
		status = 1
	case sluicev1beta1.CanaryPhaseFailed:
		status = 2
	}
	r.status.WithLabelValues(c.Name, c.Namespace).Set(status)
	r.weight.WithLabelValues(c.Name, c.Namespace, "primary").Set(float64(100 - s.CanaryWeight))
	r.weight.WithLabelValues(c.Name, c.Namespace, "canary").Set(float64(s.CanaryWeight))
	r.failedChecks.WithLabelValues(c.Name, c.Namespace).Set(float64(s.FailedChecks))
}

// release counts a finished release.
func (r *Recorder) release(c *sluicev1beta1.Canary, strategy plan.Strategy, result plan.ReleaseResult, d time.Duration) {
	r.releases.WithLabelValues(c.Name, c.Namespace, string(strategy), string(result)).Inc()
	if d > 0 {
		r.duration.WithLabelValues(c.Namespace, string(strategy), string(result)).Observe(d.Seconds())
	}
}

// forget deletes the series of a deleted Canary.
func (r *Recorder) forget(key types.NamespacedName) {
	if _, ok := r.seen.LoadAndDelete(key); !ok {
		return
	}
	labels := prometheus.Labels{"name": key.Name, "namespace": key.Namespace}
	r.status.DeletePartialMatch(labels)
	r.weight.DeletePartialMatch(labels)
	r.failedChecks.DeletePartialMatch(labels)
	r.releases.DeletePartialMatch(labels)
}
