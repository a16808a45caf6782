package notify_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/egress"
	"sluice.dev/sluice/pkg/notify"
)

// TestAnAlertRedirectedToTheOperatorsOwnEndpointIsDroppedAtOnce posts to
// an AlertProvider whose address redirects to one of the operator's own
// listeners. The post never gets there, is not retried, and the drop says
// why.
func TestAnAlertRedirectedToTheOperatorsOwnEndpointIsDroppedAtOnce(t *testing.T) {
	var hits atomic.Int32
	own := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(own.Close)
	_, port, _ := net.SplitHostPort(own.Listener.Addr().String())
	guard, err := egress.NewGuard(":" + port)
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, own.URL+"/metrics", http.StatusTemporaryRedirect)
	})
	d, logs := start(t, notify.Options{Egress: guard})
	e := newEnv(t)
	e.provider("chat", sluicev1beta1.AlertProviderSpec{Type: "slack", Address: rc.URL + "/hook"}, nil)
	if err := d.Notify(t.Context(), e.canary(alertTo("chat", info)), rollback()); err != nil {
		t.Fatal(err)
	}
	line := logs.waitFor(t, "alert dropped", 1)[0]
	if msg, _ := line["error"].(string); !strings.Contains(msg, "refused to connect to the operator's own endpoint") || line["attempts"] != float64(1) {
		t.Fatalf("logged %v, want one attempt refused for the operator's own endpoint", line)
	}
	if n := len(rc.requests("/hook")); n != 1 {
		t.Fatalf("the address got %d posts, want 1", n)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the operator's own listener got %d requests", n)
	}
}
