// Package hostile runs the operator, as operator.New wires it, against
// what goes wrong at run time and against what an attacker sends: missing
// and malformed objects, metric providers and webhooks that answer
// nonsense or too much, oversized and slow requests to its own endpoints,
// redirects to them, and Secrets whose values must never show in a log, an
// Event or a status.
package hostile

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}

// logs holds every line an operator logs, at every level, for the tests
// that read them.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logger logs everything, debug lines too, as JSON into l.
func (l *logs) logger() logr.Logger {
	return zap.New(zap.WriteTo(l), zap.JSONEncoder(), zap.Level(zapcore.Level(-10)))
}

// noPanic fails the test if the operator logged a panic, which
// controller-runtime recovers from in a reconcile.
func (l *logs) noPanic(t *testing.T) {
	t.Helper()
	for line := range strings.Lines(l.String()) {
		if strings.Contains(strings.ToLower(line), "panic") {
			t.Errorf("the operator logged a panic: %s", line)
		}
	}
}

// waitWarning waits for a Warning Event with reason about kind/name whose
// note says each of says, and returns the note.
func waitWarning(t *testing.T, ns, kind, name, reason string, says []string, timeout time.Duration) string {
	t.Helper()
	var note string
	controlplane.Eventually(t, timeout, fmt.Sprintf("Warning %s about %s/%s saying %q", reason, kind, name, says), func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Reason == reason && e.Type == corev1.EventTypeWarning && containsAll(e.Note, says) {
				note = e.Note
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%s %s/%s %s: %s", e.Type, e.Regarding.Kind, e.Regarding.Name, e.Reason, e.Note))
		}
		return false, fmt.Sprintf("events %v", seen)
	})
	return note
}

// containsAll reports whether s holds each of parts.
func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
