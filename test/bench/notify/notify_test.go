package notifybench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	nv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/events"
	"sluice.dev/sluice/pkg/notify"
	"sluice.dev/sluice/pkg/scheme"
)

// eventsPerRun is how many Events one run sends through the Alert.
const eventsPerRun = 1000

// BenchmarkThousandEventsThroughOneAlert sends 1,000 distinct Warning
// Events of a Kustomization at once through one Alert to one generic
// Provider, and measures the time from Observe to the service receiving
// each, and how many never arrive.
func BenchmarkThousandEventsThroughOneAlert(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := scheme.New()
	if err != nil {
		b.Fatal(err)
	}
	const ns = "notify-bench"
	var (
		mu       sync.Mutex
		observed = map[int]time.Time{}
		latency  []time.Duration
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e notify.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		i, _ := strconv.Atoi(strings.TrimPrefix(e.Message, "event "))
		now := time.Now()
		mu.Lock()
		if at, ok := observed[i]; ok {
			latency = append(latency, now.Sub(at))
			delete(observed, i)
		}
		mu.Unlock()
	}))
	defer srv.Close()
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&nv1beta3.Provider{ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns}, Spec: nv1beta3.ProviderSpec{Type: nv1beta3.GenericProvider, Address: srv.URL}},
		&nv1beta3.Alert{ObjectMeta: metav1.ObjectMeta{Name: "all", Namespace: ns}, Spec: nv1beta3.AlertSpec{
			ProviderRef:  nv1beta3.LocalObjectReference{Name: "hook"},
			EventSources: []nv1beta3.CrossNamespaceObjectReference{{Kind: "Kustomization", Name: "*"}},
		}},
	} {
		if err := cp.Client.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	c, err := cache.New(cp.Config, cache.Options{Scheme: s})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	for _, o := range []client.Object{&nv1beta3.Alert{}, &nv1beta3.Provider{}, &corev1.Secret{}} {
		if _, err := c.GetInformer(ctx, o); err != nil {
			b.Fatal(err)
		}
	}
	c.WaitForCacheSync(ctx)
	d, err := notify.NewDispatcher(notify.Options{Reader: c, Scheme: s, Log: logr.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = d.Start(ctx) }()

	ks := &syncv1.Kustomization{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns}}
	sent := 0
	b.ResetTimer()
	for b.Loop() {
		mu.Lock()
		start := sent
		mu.Unlock()
		for i := start; i < start+eventsPerRun; i++ {
			mu.Lock()
			observed[i] = time.Now()
			mu.Unlock()
			d.Observe(events.Observed{Object: ks, Type: corev1.EventTypeWarning, Reason: "BuildFailed", Note: fmt.Sprintf("event %d", i), Controller: "bench", Time: time.Now()})
		}
		sent += eventsPerRun
		// Wait for the run's last deliveries, or give up on them after 30s:
		// what is left is dropped.
		_ = wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return len(observed) == 0, nil
		})
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latency)
	if len(latency) == 0 {
		b.Fatal("no event was delivered")
	}
	b.ReportMetric(float64(latency[len(latency)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(latency[len(latency)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(sent-len(latency)), "dropped")
	b.ReportMetric(float64(d.Dropped()), "queue-drops")
}
