package egress_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"sluice.dev/sluice/pkg/egress"
)

// own is a listener standing for one of the operator's own, counting the
// requests that reach it.
func own(t *testing.T) (addr string, hits *atomic.Int32) {
	t.Helper()
	hits = &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), hits
}

func guarded(t *testing.T, listen ...string) *http.Client {
	t.Helper()
	g, err := egress.NewGuard(listen...)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: g.Transport(http.DefaultTransport.(*http.Transport).Clone())}
}

func TestAGuardedClientNeverReachesTheOperatorsOwnListeners(t *testing.T) {
	metrics, hits := own(t)
	_, port, _ := net.SplitHostPort(metrics)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+r.URL.Query().Get("to")+"/metrics", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	c := guarded(t, ":"+port, "0", "")

	tests := []struct {
		name string
		url  string
	}{
		{"a redirect to its loopback address", redirect.URL + "/?to=" + metrics},
		{"a redirect to localhost", redirect.URL + "/?to=localhost:" + port},
		{"a redirect to the unspecified address", redirect.URL + "/?to=0.0.0.0:" + port},
		{"a direct call", "http://" + metrics + "/metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			resp, err := c.Get(tt.url)
			if err == nil {
				_ = resp.Body.Close()
				t.Fatalf("answered %s", resp.Status)
			}
			if !errors.Is(err, egress.ErrOwnEndpoint) {
				t.Fatalf("error %v, want ErrOwnEndpoint", err)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the operator's listener got %d requests", n)
	}

	t.Run("another port on loopback is reached", func(t *testing.T) {
		other, otherHits := own(t)
		resp, err := c.Get(redirect.URL + "/?to=" + other)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if otherHits.Load() != 1 {
			t.Fatalf("%d requests reached the other listener", otherHits.Load())
		}
	})
	t.Run("a nil guard guards nothing", func(t *testing.T) {
		var g *egress.Guard
		resp, err := (&http.Client{Transport: g.Transport(http.DefaultTransport.(*http.Transport).Clone())}).Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	})
}

func TestListenAddressesThatAreNotHostPortAreRefused(t *testing.T) {
	for _, addr := range []string{"8080", "localhost", ":http-alt", ":70000"} {
		if _, err := egress.NewGuard(addr); err == nil {
			t.Errorf("%q accepted", addr)
		}
	}
}

func TestAnswersOverTheCapFailNamingTheCap(t *testing.T) {
	const limit = 1 << 10
	body := strings.Repeat("x", limit+1)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"an answer that announces its length", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }, egress.ErrAnswerTooLarge},
		{"an answer sent in chunks", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, body[:limit])
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, body[limit:])
		}, egress.ErrAnswerTooLarge},
		{"an answer of exactly the cap", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body[:limit]) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			c := &http.Client{Transport: egress.LimitAnswers(http.DefaultTransport, limit)}
			resp, err := c.Get(srv.URL)
			if err == nil {
				defer func() { _ = resp.Body.Close() }()
				_, err = io.ReadAll(resp.Body)
			}
			if (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
}
