package prometheus

import (
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Exporter plays an application that exports the request histogram
// http_request_duration_seconds{status}: every 100ms it records ten
// requests with the error ratio and latency the test set.
type Exporter struct {
	// Addr is where Prometheus scrapes it, host:port on loopback.
	Addr string

	mu         sync.Mutex
	errorRatio float64
	latency    time.Duration
}

// StartExporter starts an exporter that serves no errors at 10ms until
// told otherwise, until the test ends.
func StartExporter(t testing.TB) *Exporter {
	t.Helper()
	e := &Exporter{latency: 10 * time.Millisecond}
	reg := prometheus.NewRegistry()
	requests := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "Request durations by status.",
		Buckets: prometheus.DefBuckets,
	}, []string{"status"})
	reg.MustRegister(requests)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	e.Addr = strings.TrimPrefix(srv.URL, "http://")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			e.mu.Lock()
			failed, latency := int(e.errorRatio*10+0.5), e.latency.Seconds()
			e.mu.Unlock()
			for i := range 10 {
				status := "200"
				if i < failed {
					status = "500"
				}
				requests.WithLabelValues(status).Observe(latency)
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
		srv.Close()
	})
	return e
}

// Set changes the share of requests that fail (0 to 1) and their latency.
func (e *Exporter) Set(errorRatio float64, latency time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errorRatio, e.latency = errorRatio, latency
}
