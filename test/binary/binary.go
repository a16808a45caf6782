// Package binary builds the sluice operator binary and runs it out of
// process, as users run it, for the tests and benchmarks that must measure
// or exercise exactly that: its flags, its wiring, its own memory and CPU.
package binary

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/output"
)

// Build builds cmd/sluice into dir and returns its path. The Go build
// cache makes a second build of the same tree cheap.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "sluice")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = controlplane.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/sluice: %w\n%s", err, out)
	}
	return bin, nil
}

// Operator is a running operator process.
type Operator struct {
	Cmd *exec.Cmd
	// Output is what it printed, stdout and stderr.
	Output *output.Buffer
	exited chan struct{}
	err    error
}

// Start runs bin with args until the test ends, when it is killed; its
// output is logged if the test failed.
func Start(tb testing.TB, bin string, args ...string) *Operator {
	tb.Helper()
	o := &Operator{Cmd: exec.Command(bin, args...), Output: &output.Buffer{}, exited: make(chan struct{})}
	o.Cmd.Stdout, o.Cmd.Stderr = o.Output, o.Output
	// Killed with the test process, whatever ends it, so that no
	// operator outlives its control plane.
	o.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := o.Cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		o.err = o.Cmd.Wait()
		close(o.exited)
	}()
	tb.Cleanup(func() {
		_ = o.Cmd.Process.Kill()
		<-o.exited
		if tb.Failed() {
			tb.Logf("operator output:\n%s", o.Output)
		}
	})
	return o
}

// Exited is closed once the process has exited.
func (o *Operator) Exited() <-chan struct{} { return o.exited }

// Err is how the process exited, once Exited is closed.
func (o *Operator) Err() error { return o.err }

// PeakRSS is the process's peak resident set (VmHWM), in bytes.
func (o *Operator) PeakRSS() (int64, error) { return o.status("VmHWM") }

// RSS is the process's resident set now (VmRSS), in bytes.
func (o *Operator) RSS() (int64, error) { return o.status("VmRSS") }

// status reads a size field, in kB, of /proc/<pid>/status, in bytes.
func (o *Operator) status(field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", o.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s %q: %w", field, v, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, o.Cmd.Process.Pid)
}

// clockTicks is the kernel's USER_HZ, in which /proc reports CPU time; it
// is 100 on Linux.
const clockTicks = 100

// CPU is the CPU time the process has used, user and system.
func (o *Operator) CPU() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", o.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after it. utime and stime are fields 14 and 15.
	rest := string(data)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat has %d fields after the name", o.Cmd.Process.Pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", o.Cmd.Process.Pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
