package main

import (
	"io"
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
	if err := Run(t.Context(), io.MultiWriter(&out, testWriter{t}), Options{}); err != nil {
		t.Fatalf("demo: %v", err)
	}
	lines := strings.Split(out.String(), "\n")
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
