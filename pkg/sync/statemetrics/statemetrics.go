// Package statemetrics exports the state of every sync-core object as
// Flux's controllers export it: gotk_reconcile_condition for its Ready
// condition and gotk_suspend_status for spec.suspend, with Flux's names
// and labels, so that Flux's Grafana dashboards and alert rules work
// unchanged. The values are read from the operator's cache when
// Prometheus scrapes: they cost no API request, and they are never
// stale or left behind by a deleted object.
package statemetrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	imagev1 "sluice.dev/sluice/api/image/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/manual"
)

// Metric names, Flux's.
const (
	ConditionMetric = "gotk_reconcile_condition"
	SuspendMetric   = "gotk_suspend_status"
)

// statusDeleted is Flux's status label value for a deleted object.
const statusDeleted metav1.ConditionStatus = "Deleted"

// listTimeout bounds a scrape's reads of the cache, which answer at once
// once it has synced.
const listTimeout = 10 * time.Second

// kind is a sync-core kind whose objects are exported.
type kind struct {
	name    string
	newList func() client.ObjectList
}

// kinds are the kinds with a Ready condition and, but for ImagePolicy,
// spec.suspend: the sources, Kustomization, HelmRelease and the image
// kinds.
func kinds() []kind {
	return []kind{
		{"GitRepository", func() client.ObjectList { return &sourcev1.GitRepositoryList{} }},
		{"OCIRepository", func() client.ObjectList { return &sourcev1.OCIRepositoryList{} }},
		{"Bucket", func() client.ObjectList { return &sourcev1.BucketList{} }},
		{"HelmRepository", func() client.ObjectList { return &sourcev1.HelmRepositoryList{} }},
		{"HelmChart", func() client.ObjectList { return &sourcev1.HelmChartList{} }},
		{"Kustomization", func() client.ObjectList { return &syncv1.KustomizationList{} }},
		{"HelmRelease", func() client.ObjectList { return &syncv2.HelmReleaseList{} }},
		{"ImageRepository", func() client.ObjectList { return &imagev1.ImageRepositoryList{} }},
		{"ImagePolicy", func() client.ObjectList { return &imagev1.ImagePolicyList{} }},
		{"ImageUpdateAutomation", func() client.ObjectList { return &imagev1.ImageUpdateAutomationList{} }},
	}
}

// Collector is the Prometheus collector of the sync-core objects' state.
// It reads the caches of the managers in the process that lead: one in
// the operator's binary, several in a test's process.
type Collector struct {
	condition *prometheus.Desc
	suspend   *prometheus.Desc

	mu      sync.Mutex
	readers map[*reader]struct{}
}

type reader struct{ client.Reader }

// Register registers a Collector with reg, or returns the one already
// registered there, so that the managers of one process share its
// series.
func Register(reg prometheus.Registerer) (*Collector, error) {
	c := &Collector{
		condition: prometheus.NewDesc(ConditionMetric,
			"The current condition status of a GitOps Toolkit resource reconciliation.",
			[]string{"kind", "name", "namespace", "type", "status"}, nil),
		suspend: prometheus.NewDesc(SuspendMetric,
			"The current suspend status of a GitOps Toolkit resource.",
			[]string{"kind", "name", "namespace"}, nil),
		readers: map[*reader]struct{}{},
	}
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(*Collector); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("register %s: %w", ConditionMetric, err)
	}
	return c, nil
}

// Report is a runnable that exports the objects r reads while it runs.
// The manager runs it once its replica leads, so that only the leader
// exports them, as only Flux's leader reconciles, and a stopped
// manager's cache is not read again.
func (c *Collector) Report(r client.Reader) manager.Runnable {
	return manager.RunnableFunc(func(ctx context.Context) error {
		rd := &reader{r}
		c.mu.Lock()
		c.readers[rd] = struct{}{}
		c.mu.Unlock()
		<-ctx.Done()
		c.mu.Lock()
		delete(c.readers, rd)
		c.mu.Unlock()
		return nil
	})
}

// Describe sends the two metrics' descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.condition
	ch <- c.suspend
}

// Collect sends the series of every object that a reporting cache holds,
// once each.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	readers := make([]client.Reader, 0, len(c.readers))
	for r := range c.readers {
		readers = append(readers, r.Reader)
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	type key struct {
		kind string
		types.NamespacedName
	}
	seen := map[key]bool{}
	for _, r := range readers {
		for _, k := range kinds() {
			list := k.newList()
			// A cache that has stopped or not synced has nothing to say;
			// the objects are read, never changed, so no copy is needed.
			if err := r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
				continue
			}
			_ = meta.EachListItem(list, func(o runtime.Object) error {
				obj, ok := o.(client.Object)
				if !ok {
					return nil
				}
				id := key{k.name, client.ObjectKeyFromObject(obj)}
				if seen[id] {
					return nil
				}
				seen[id] = true
				c.collect(ch, k.name, obj)
				return nil
			})
		}
	}
}

// collect sends one object's series: for each value of the status
// label, 1 for its Ready condition's status and 0 for the others, as in
// Flux; an object with no Ready condition yet is Unknown. Deleted is
// always 0 (a deleted object has no series), and is there because
// Flux's documented alert rule adds it:
//
//	max(gotk_reconcile_condition{status="False",type="Ready"}) by (namespace, name, kind)
//	  + on(namespace, name, kind) (max(gotk_reconcile_condition{status="Deleted"}) by (namespace, name, kind)) * 2 == 1
func (c *Collector) collect(ch chan<- prometheus.Metric, kind string, obj client.Object) {
	state := manual.StateOf(obj)
	status := metav1.ConditionUnknown
	if ready := state.Ready(); ready != nil {
		status = ready.Status
	}
	for _, s := range []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown, statusDeleted} {
		ch <- prometheus.MustNewConstMetric(c.condition, prometheus.GaugeValue, one(s == status),
			kind, obj.GetName(), obj.GetNamespace(), "Ready", string(s))
	}
	ch <- prometheus.MustNewConstMetric(c.suspend, prometheus.GaugeValue, one(state.Suspended),
		kind, obj.GetName(), obj.GetNamespace())
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
