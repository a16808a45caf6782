package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/netns"
)

// slots run the app's processes as a kubelet would run the pods of the
// two Deployments, which kwok only pretends to run: one process per
// Deployment, on that Deployment's port in the network namespace, with
// the args of its pod template. A process is replaced when the template
// changes and stopped when the Deployment is scaled to zero, so that what
// answers on each port is what Sluice made of each Deployment.
type slots struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// passed is closed when the pass over the Deployments under way
	// ends, and then replaced.
	passed chan struct{}
}

// slot is one Deployment's process.
type slot struct {
	// name is how the demo calls it: primary or canary.
	name       string
	deployment string
	port       int
	// args of the running process; empty when none runs.
	args    string
	running *appProcess
	// draining is a process whose Deployment was scaled to zero: it
	// serves on until drainUntil, as a pod with a preStop sleep would,
	// because Traefik sends it requests until it has applied the route
	// that Sluice wrote just before scaling down.
	draining   *appProcess
	drainUntil time.Time
	// retryAt holds off a restart after a process failed.
	retryAt time.Time
}

// drainTime is how long a scaled-down process serves on: more than
// Traefik's two seconds of throttling between configuration reloads.
const drainTime = 5 * time.Second

// appProcess is a running app.
type appProcess struct {
	pid     int
	version string
	// exited is closed when the process has ended.
	exited chan struct{}
}

// slotRunner is what the slots share.
type slotRunner struct {
	c       client.Client
	ns      *netns.Namespace
	bin     string
	workDir string
	out     *printer
}

func startSlots(c client.Client, ns *netns.Namespace, bin, workDir string, out *printer) *slots {
	ctx, cancel := context.WithCancel(context.Background())
	s := &slots{cancel: cancel, done: make(chan struct{}), passed: make(chan struct{})}
	r := &slotRunner{c: c, ns: ns, bin: bin, workDir: workDir, out: out}
	all := []*slot{
		{name: "primary", deployment: appName + "-primary", port: primaryPort},
		{name: "canary", deployment: appName, port: canaryPort},
	}
	go func() {
		defer close(s.done)
		defer func() {
			for _, sl := range all {
				r.stop(sl.running)
				r.stop(sl.draining)
			}
		}()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, sl := range all {
				r.sync(ctx, sl)
			}
			s.mu.Lock()
			close(s.passed)
			s.passed = make(chan struct{})
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// waitSynced waits for a whole pass over the Deployments that began after
// the call, so that the processes match what the Deployments were then.
func (s *slots) waitSynced(ctx context.Context) error {
	for range 2 {
		s.mu.Lock()
		passed := s.passed
		s.mu.Unlock()
		select {
		case <-passed:
		case <-s.done:
			return errors.New("the app's processes are stopped")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// stop stops the processes and the loop that follows the Deployments.
func (s *slots) stop() error {
	s.cancel()
	<-s.done
	return nil
}

// sync makes the slot's process match its Deployment.
func (r *slotRunner) sync(ctx context.Context, sl *slot) {
	if sl.draining != nil && time.Now().After(sl.drainUntil) {
		r.stop(sl.draining)
		r.out.event("%s: %s stopped (%s scaled to zero)", sl.name, sl.draining.version, sl.deployment)
		sl.draining = nil
	}
	if sl.running != nil {
		select {
		case <-sl.running.exited:
			r.out.event("%s: %s exited unexpectedly; log in %s", sl.name, sl.running.version, r.workDir)
			sl.running, sl.args, sl.retryAt = nil, "", time.Now().Add(time.Second)
		default:
		}
	}
	d := &appsv1.Deployment{}
	err := r.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: sl.deployment}, d)
	var args []string
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return // a transient error or the end of the demo: try again
	case d.DeletionTimestamp == nil && (d.Spec.Replicas == nil || *d.Spec.Replicas > 0) && len(d.Spec.Template.Spec.Containers) > 0:
		args = d.Spec.Template.Spec.Containers[0].Args
	}
	want := strings.Join(args, " ")
	if want == sl.args || time.Now().Before(sl.retryAt) {
		return
	}
	old := sl.running
	if want == "" {
		r.stop(sl.draining)
		sl.draining, sl.drainUntil = old, time.Now().Add(drainTime)
		sl.running, sl.args = nil, ""
		return
	}
	p, err := r.start(ctx, sl, args)
	if err != nil {
		r.out.event("%s: %v", sl.name, err)
		sl.retryAt = time.Now().Add(time.Second)
		return
	}
	// The new process listens beside the old one, so the old one stops
	// only now, finishing the requests it took.
	r.stop(old)
	if old != nil {
		r.out.event("%s: %s serves on :%d, replacing %s", sl.name, p.version, sl.port, old.version)
	} else {
		r.out.event("%s: %s serves on :%d", sl.name, p.version, sl.port)
	}
	sl.running, sl.args = p, want
}

// start runs the app in the network namespace and waits until it serves.
func (r *slotRunner) start(ctx context.Context, sl *slot, args []string) (*appProcess, error) {
	version := "?"
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--version="); ok {
			version = v
		}
	}
	logPath := filepath.Join(r.workDir, fmt.Sprintf("app-%s-%s.log", sl.name, version))
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create app log: %w", err)
	}
	ready := make(chan struct{})
	cmd := r.ns.Command(r.bin, append(args, fmt.Sprintf("--listen=%s:%d", r.ns.IP, sl.port))...)
	cmd.Stdout = &readyWriter{w: logFile, ready: ready}
	cmd.Stderr = logFile
	// Killed with the demo, however it ends.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", version, err)
	}
	p := &appProcess{pid: cmd.Process.Pid, version: version, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	select {
	case <-ready:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s exited before serving: %s", version, bytes.TrimSpace(tailFile(logPath)))
	case <-ctx.Done():
		r.stop(p)
		return nil, ctx.Err()
	case <-time.After(10 * time.Second):
		r.stop(p)
		return nil, errors.New(version + " did not serve within 10s")
	}
}

// stop ends a process gracefully, or after 10s by force.
func (r *slotRunner) stop(p *appProcess) {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.exited
}

// readyWriter passes the app's output on and closes ready at its
// "serving" line.
type readyWriter struct {
	w     *os.File
	ready chan struct{}
	once  sync.Once
}

func (rw *readyWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("serving")) {
		rw.once.Do(func() { close(rw.ready) })
	}
	return rw.w.Write(p)
}

// tailFile is the end of a log file, for error messages.
func tailFile(path string) []byte {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return b
}
