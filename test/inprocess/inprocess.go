// Package inprocess runs the operator inside a test process, watching one
// namespace, so that tests can run several side by side and stop and
// restart them at will.
package inprocess

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"sluice.dev/sluice/pkg/operator"
)

// ErrorLogger logs the operator's errors only, to stderr: for benchmarks,
// whose figures its info lines would slow, and which must still say why
// they failed.
func ErrorLogger() logr.Logger {
	return zap.New(zap.Level(zapcore.ErrorLevel), zap.WriteTo(os.Stderr))
}

// Start runs the operator against cfg, limited to namespace, with no
// leader election and no listeners, until the returned stop is called or
// the test ends. configure may change further options.
func Start(t testing.TB, cfg *rest.Config, namespace string, log logr.Logger, configure ...func(*operator.Options)) (stop func()) {
	t.Helper()
	gate := &logGate{helper: t.Helper}
	log = logr.New(&gatedSink{sink: log.GetSink(), gate: gate})
	ctx, cancel := context.WithCancel(context.Background())
	opts := operator.DefaultOptions()
	for _, c := range configure {
		c(&opts)
	}
	opts.Namespace, opts.LeaderElection = namespace, false
	opts.MetricsBindAddress, opts.HealthProbeBindAddress, opts.ReceiverBindAddress = "0", "0", "0"
	opts.GracefulShutdownTimeout = 5 * time.Second
	mgr, err := operator.New(ctx, cfg, opts, log)
	if err != nil {
		cancel()
		t.Fatalf("build the operator: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("operator: %v", err)
			}
			// The manager's stop procedure may still log from its own
			// goroutines; a test logger panics once the test is over.
			gate.close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// logGate lets log lines through until it is closed, and closes only once
// no line is being written.
type logGate struct {
	mu     sync.RWMutex
	closed bool
	// helper marks the gate's frames as the test's helpers, for a test
	// logger that names the caller's line.
	helper func()
}

func (g *logGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// do runs write unless the gate is closed.
func (g *logGate) do(write func()) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.closed {
		g.helper()
		write()
	}
}

// gatedSink is a logr sink that writes through gate.
type gatedSink struct {
	sink logr.LogSink
	gate *logGate
}

// gateFrames are the calls gatedSink adds between the caller and the
// sink, for sinks that report the caller's line.
const gateFrames = 3

func (s *gatedSink) Init(info logr.RuntimeInfo) {
	info.CallDepth += gateFrames
	s.sink.Init(info)
}

// WithCallDepth keeps the caller's line right through sinks that report
// it.
func (s *gatedSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.sink.(logr.CallDepthLogSink); ok {
		return &gatedSink{sink: cd.WithCallDepth(depth), gate: s.gate}
	}
	return s
}

func (s *gatedSink) Enabled(level int) bool { return s.sink.Enabled(level) }

// GetCallStackHelper marks logr's own frames as helpers too.
func (s *gatedSink) GetCallStackHelper() func() { return s.gate.helper }

func (s *gatedSink) Info(level int, msg string, keysAndValues ...any) {
	s.gate.helper()
	s.gate.do(func() {
		s.gate.helper()
		s.sink.Info(level, msg, keysAndValues...)
	})
}

func (s *gatedSink) Error(err error, msg string, keysAndValues ...any) {
	s.gate.helper()
	s.gate.do(func() {
		s.gate.helper()
		s.sink.Error(err, msg, keysAndValues...)
	})
}

func (s *gatedSink) WithValues(keysAndValues ...any) logr.LogSink {
	return &gatedSink{sink: s.sink.WithValues(keysAndValues...), gate: s.gate}
}

func (s *gatedSink) WithName(name string) logr.LogSink {
	return &gatedSink{sink: s.sink.WithName(name), gate: s.gate}
}
