package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/test/output"
)

// testWriter passes the demo's output to the test log, so that `go test
// -v` shows the rollouts as they go.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestTheDemoPromotesTheHealthyReleaseAndRollsBackTheFaultyOne(t *testing.T) {
	// As in main: the operator logs to its file in the work folder.
	ctrllog.SetLogger(logr.Discard())
	var out output.Buffer
	// The dashboard shows both releases once they are over: the timeline
	// of the Canary's page has the promotion and the rollback.
	var page string
	opts := Options{DashboardAddress: "127.0.0.1:0", AfterReleases: func(ctx context.Context, url string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"canaries/"+namespace+"/"+appName, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("read the dashboard: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the dashboard answered %s: %s", resp.Status, body)
		}
		page = string(body)
		return err
	}}
	if err := Run(t.Context(), io.MultiWriter(&out, testWriter{t}), opts); err != nil {
		t.Fatalf("demo: %v", err)
	}
	lines := strings.Split(out.String(), "\n")
	if !strings.HasPrefix(lines[0], "Sluice dashboard: http://127.0.0.1:") {
		t.Errorf("the demo's first line is %q, want the dashboard's URL", lines[0])
	}
	for _, want := range []string{"<b>RolledBack</b>", "<b>Promoted</b>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard's page of the Canary has no %s release:\n%s", want, page)
		}
	}
	line := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Errorf("the demo's output has no line that starts with %q", prefix)
		return ""
	}
	line("  ok     v2 (healthy) was promoted in ")
	// The reason names the metric that failed and its threshold.
	if v3 := line("  ok     v3 (5% errors) was rolled back in "); !strings.Contains(v3, "success-rate") || !strings.Contains(v3, "< 99") {
		t.Errorf("the summary of v3 does not say which metric failed: %q", v3)
	}
	line("PASS: Sluice promoted the healthy release and rolled back the faulty one.")
}
