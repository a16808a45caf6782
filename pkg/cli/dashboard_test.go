package cli_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestTheDashboardPrintsItsURLFirstAndServesUntilInterrupted(t *testing.T) {
	ns := newNamespace(t)
	newCanary(t, ns, "podinfo", "Deployment", "podinfo")
	ctx, interrupt := context.WithCancel(t.Context())
	defer interrupt()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- execute(ctx, out, &syncBuffer{}, "--kubeconfig", cp.Kubeconfig, "dashboard", "--address", "127.0.0.1:0")
	}()
	waitForOutput(t, out, "\n")
	first, _, _ := strings.Cut(out.String(), "\n")
	url, ok := strings.CutPrefix(first, "Sluice dashboard: http://127.0.0.1:")
	if !ok || !strings.HasSuffix(url, "/") {
		t.Fatalf("first line %q, want Sluice dashboard: http://127.0.0.1:PORT/", first)
	}
	resp, err := http.Get(strings.TrimPrefix(first, "Sluice dashboard: ") + "?namespace=" + ns)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `<a href="/canaries/`+ns+`/podinfo">`) {
		t.Fatalf("the overview: %d\n%s", resp.StatusCode, body)
	}

	interrupt()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the dashboard ended with %v on an interrupt", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the dashboard did not stop on an interrupt")
	}
}

func TestTheDashboardRefusesAnAddressItCannotListenOn(t *testing.T) {
	tests := []struct {
		name, address, err string
	}{
		{"no port", "127.0.0.1", `dashboard address "127.0.0.1": want host:port`},
		{"a port out of range", "127.0.0.1:99999", "listen on 127.0.0.1:99999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, "dashboard", "--address", tt.address)
			if r.error == nil || !strings.Contains(r.error.Error(), tt.err) {
				t.Errorf("error %v, want one with %q", r.error, tt.err)
			}
		})
	}
}
