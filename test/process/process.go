// Package process runs a test's daemon (Prometheus, Alertmanager) as a
// child process: killed with the test process whatever ends it, stopped
// when the test ends, and ready once it answers over HTTP.
package process

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Process is a running daemon.
type Process struct {
	name string
	// log is the file its output goes to.
	log  string
	done chan struct{}
}

// Start runs bin with args until the test ends, its output in a file of
// dir. name is how failures call it.
func Start(t testing.TB, name, dir, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Killed with the test process, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		_ = logFile.Close()
	})
	return p
}

// WaitHTTP waits up to 30s for url to answer with a status ready accepts,
// and fails the test with the end of the log if the daemon exits first
// or never does.
func (p *Process) WaitHTTP(t testing.TB, client *http.Client, url string, ready func(status int) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if ready(resp.StatusCode) {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited:\n%s", p.name, p.Tail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 30s:\n%s", p.name, p.Tail())
		}
	}
}

// Tail is the last 4000 bytes of the daemon's log.
func (p *Process) Tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	return string(b[max(len(b)-4000, 0):])
}
