package hook

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/egress"
)

func payload() sluicev1beta1.CanaryWebhookPayload {
	return sluicev1beta1.CanaryWebhookPayload{Name: "podinfo", Namespace: "test", Phase: sluicev1beta1.CanaryPhaseProgressing, Checksum: "abc"}
}

func newCaller() *Caller {
	c := NewCaller(nil)
	c.backoff = time.Millisecond
	return c
}

func TestCallPostsFlaggersPayload(t *testing.T) {
	var got sluicev1beta1.CanaryWebhookPayload
	var contentType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		contentType = r.Header.Get("Content-Type")
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	hook := sluicev1beta1.CanaryWebhook{Name: "load", URL: srv.URL, Metadata: map[string]string{"cmd": "hey -z 1m"}}
	res := newCaller().Call(t.Context(), []sluicev1beta1.CanaryWebhook{hook}, payload())
	if !res[0].OK() || res[0].StatusCode != http.StatusAccepted {
		t.Fatalf("result %+v", res[0])
	}
	if got.Name != "podinfo" || got.Namespace != "test" || got.Phase != "Progressing" || got.Checksum != "abc" || got.Metadata["cmd"] != "hey -z 1m" || contentType != "application/json" {
		t.Fatalf("payload %+v content type %q", got, contentType)
	}
}

func TestCallResults(t *testing.T) {
	tests := []struct {
		name     string
		handler  func(n int32) (int, time.Duration)
		hook     sluicev1beta1.CanaryWebhook
		ok       bool
		attempts int32
		err      string
	}{
		{"a 200 is a pass", func(int32) (int, time.Duration) { return 200, 0 }, sluicev1beta1.CanaryWebhook{}, true, 1, ""},
		{"a 203 is a failure, as in Flagger", func(int32) (int, time.Duration) { return 203, 0 }, sluicev1beta1.CanaryWebhook{}, false, 1, "203"},
		{"a 500 without retries fails at once", func(int32) (int, time.Duration) { return 500, 0 }, sluicev1beta1.CanaryWebhook{}, false, 1, "500 Internal Server Error: boom"},
		{"a 500 is retried and may then pass", func(n int32) (int, time.Duration) {
			if n < 3 {
				return 503, 0
			}
			return 200, 0
		}, sluicev1beta1.CanaryWebhook{Retries: 3}, true, 3, ""},
		{"retries stop at their number", func(int32) (int, time.Duration) { return 502, 0 }, sluicev1beta1.CanaryWebhook{Retries: 2}, false, 3, "502"},
		{"a 403 is an answer, not retried", func(int32) (int, time.Duration) { return 403, 0 }, sluicev1beta1.CanaryWebhook{Retries: 5}, false, 1, "403"},
		{"a hook slower than its timeout fails", func(int32) (int, time.Duration) { return 200, time.Second }, sluicev1beta1.CanaryWebhook{Timeout: "50ms"}, false, 1, "no answer within 50ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				code, delay := tt.handler(n.Add(1))
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
					return
				}
				w.WriteHeader(code)
				_, _ = w.Write([]byte("boom"))
			}))
			defer srv.Close()
			tt.hook.Name, tt.hook.URL = "h", srv.URL
			res := newCaller().Call(t.Context(), []sluicev1beta1.CanaryWebhook{tt.hook}, payload())[0]
			if res.OK() != tt.ok || n.Load() != tt.attempts || (tt.err != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tt.err))) {
				t.Fatalf("ok %v after %d attempts (%v); want ok %v after %d with %q", res.OK(), n.Load(), res.Err, tt.ok, tt.attempts, tt.err)
			}
		})
	}
}

func TestHooksOfOneCallRunTogether(t *testing.T) {
	const hooks = 4
	var arrived sync.WaitGroup
	arrived.Add(hooks)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		// Each answers only once every hook has called: run one after the
		// other, they would all time out.
		select {
		case <-all:
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	var list []sluicev1beta1.CanaryWebhook
	for range hooks {
		list = append(list, sluicev1beta1.CanaryWebhook{Name: "h", URL: srv.URL, Timeout: "5s"})
	}
	for _, r := range newCaller().Call(t.Context(), list, payload()) {
		if !r.OK() {
			t.Fatalf("hook failed: %v", r.Err)
		}
	}
}

func TestTheCallEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	res := newCaller().Call(ctx, []sluicev1beta1.CanaryWebhook{{Name: "slow", URL: srv.URL, Timeout: "1h", Retries: 10}}, payload())
	if res[0].OK() || ctx.Err() == nil {
		t.Fatalf("result %+v returned before the context ended", res[0])
	}
}

func TestDisableTLSSkipsCertificateVerification(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	c := newCaller()
	hooks := []sluicev1beta1.CanaryWebhook{{Name: "verified", URL: srv.URL}, {Name: "unverified", URL: srv.URL, DisableTLS: true}}
	res := c.Call(t.Context(), hooks, payload())
	if res[0].OK() || !strings.Contains(res[0].Err.Error(), "certificate") {
		t.Errorf("a self-signed certificate was accepted: %+v", res[0])
	}
	if !res[1].OK() {
		t.Errorf("disableTLS still verified: %v", res[1].Err)
	}
}

func TestEventMetadataIsFlaggers(t *testing.T) {
	m := EventMetadata("Advance podinfo canary weight 10", true, time.UnixMilli(1700000000123))
	if m["eventMessage"] != "Advance podinfo canary weight 10" || m["eventType"] != "Warning" || m["timestamp"] != "1700000000123" {
		t.Fatalf("metadata %v", m)
	}
}

func TestAnAnswerOverTheCapFailsTheHookOnce(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		// In chunks, so that only reading finds the answer too long.
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for n := 0; n <= MaxAnswer; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	res := newCaller().Call(t.Context(), []sluicev1beta1.CanaryWebhook{{Name: "chatty", URL: srv.URL, Retries: 3}}, payload())
	if res[0].OK() || !strings.Contains(res[0].Err.Error(), "answer too large") {
		t.Fatalf("result %+v, want a failure saying the answer is too large", res[0])
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls: the same answer was asked for again", n)
	}
}

func TestARedirectToTheOperatorsOwnEndpointFailsTheHookOnce(t *testing.T) {
	var own, calls atomic.Int32
	operator := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { own.Add(1) }))
	defer operator.Close()
	_, port, _ := net.SplitHostPort(operator.Listener.Addr().String())
	guard, err := egress.NewGuard(":" + port)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Redirect(w, r, operator.URL+"/metrics", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := NewCaller(guard)
	c.backoff = time.Millisecond
	res := c.Call(t.Context(), []sluicev1beta1.CanaryWebhook{{Name: "smoke", URL: srv.URL, Retries: 3}}, payload())
	if res[0].OK() || !errors.Is(res[0].Err, egress.ErrOwnEndpoint) {
		t.Fatalf("result %+v, want a failure for the operator's own endpoint", res[0])
	}
	if calls.Load() != 1 || own.Load() != 0 {
		t.Fatalf("%d calls to the hook and %d to the operator's listener, want 1 and 0", calls.Load(), own.Load())
	}
}
