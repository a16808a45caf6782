package dashboard

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"k8s.io/client-go/rest"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// apiLog records the requests a client sends to the API server.
type apiLog struct {
	mu       sync.Mutex
	requests []string
}

func (l *apiLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		verb := r.Method
		if r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1" {
			verb = "WATCH"
		}
		l.mu.Lock()
		l.requests = append(l.requests, verb+" "+r.URL.Path)
		l.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

// since returns the requests recorded after the first n.
func (l *apiLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.requests[n:]...)
}

func (l *apiLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.requests)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func watches(requests []string) int {
	n := 0
	for _, r := range requests {
		if strings.HasPrefix(r, "WATCH ") {
			n++
		}
	}
	return n
}

// The dashboard is a client of the API server only: it never asks the
// operator anything, so the operator's idle request count stays as it
// is. What it sends itself is counted here: nothing while no page is
// open, one watch per open tab, and no polling while a tab stays open.
func TestTheDashboardSendsNothingWhenIdleAndOneWatchPerOpenTab(t *testing.T) {
	t.Parallel()
	const ns = "requests"
	namespace(t, ns)
	deployment(t, ns, "api", "ghcr.io/example/api:1.0.0")
	canary(t, ns, "api", sluicev1beta1.CanaryAnalysis{Threshold: 2, StepWeight: 10}, nil)

	log := &apiLog{}
	cfg := rest.CopyConfig(cp.Config)
	cfg.Wrap(log.wrap)
	url := startDashboard(t, cfg)

	// No page open: nothing at all.
	time.Sleep(5 * time.Second)
	if got := log.since(0); len(got) != 0 {
		t.Fatalf("with no page open the dashboard sent %d requests: %v", len(got), got)
	}

	// One tab on the overview: the page's reads, then one watch and
	// nothing more while it stays open.
	tab := newTab(t)
	run(t, tab, "load the overview", chromedp.Navigate(url+"?namespace="+ns))
	waitWatches(t, log, 0, 1)
	loaded := log.len()
	time.Sleep(15 * time.Second)
	if got := log.since(loaded); len(got) != 0 {
		t.Fatalf("an open tab that nothing changed for 15 s cost %d requests: %v", len(got), got)
	}

	// A second tab, on the Canary's page: one more watch.
	second := newTab(t)
	before := log.len()
	run(t, second, "load the Canary's page", chromedp.Navigate(url+"canaries/"+ns+"/api"))
	waitWatches(t, log, before, 1)
	t.Logf("requests of the dashboard with two tabs open: %v", log.since(0))
	if got := watches(log.since(0)); got != 2 {
		t.Fatalf("two open tabs opened %d watches, want 2: %v", got, log.since(0))
	}
}

// waitWatches waits until want watches were opened after the first n
// requests.
func waitWatches(t *testing.T, log *apiLog, n, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for watches(log.since(n)) < want {
		if time.Now().After(deadline) {
			t.Fatalf("the page opened %d watches in 30 s, want %d: %v", watches(log.since(n)), want, log.since(n))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Whatever the page still reads comes with its watch.
	time.Sleep(2 * time.Second)
	if got := watches(log.since(n)); got != want {
		t.Fatalf("the page opened %d watches, want %d: %v", got, want, log.since(n))
	}
}
