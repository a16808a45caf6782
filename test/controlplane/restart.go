package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// RestartAPIServer stops kube-apiserver and starts it again with the same
// binary, flags, port and certificates, as a crash or an upgrade in place
// would, and waits until it answers /readyz. etcd keeps running, so
// everything stored survives; clients see their connections and watches
// break and must reconnect. It returns how long the API server was down:
// from the stop until /readyz answered 200 again.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context) (time.Duration, error) {
	pid, args, err := cp.apiServerProcess()
	if err != nil {
		return 0, err
	}
	stopped := time.Now()
	if err := stopPID(ctx, pid); err != nil {
		return 0, err
	}
	if cp.restarted != nil {
		<-cp.restarted.done
		_ = cp.restarted.log.Close()
		cp.restarted = nil
	}
	p, err := startProcess(args[0], args[1:], filepath.Join(cp.Dir, "kube-apiserver-restarted.log"), nil)
	if err != nil {
		return 0, fmt.Errorf("start kube-apiserver again: %w", err)
	}
	cp.restarted = p
	cp.watchdog.guard(p.cmd.Process.Pid)
	if err := cp.waitReady(ctx, p); err != nil {
		return 0, err
	}
	return time.Since(stopped), nil
}

// apiServerProcess finds the running kube-apiserver, its process id and
// its command line: the one RestartAPIServer started, or else envtest's,
// a child of this process.
func (cp *ControlPlane) apiServerProcess() (int, []string, error) {
	if cp.restarted != nil {
		return cp.restarted.cmd.Process.Pid, cp.restarted.cmd.Args, nil
	}
	for pid := range childPIDs() {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || strings.TrimSpace(string(comm)) != "kube-apiserver" {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			return 0, nil, fmt.Errorf("read the command line of kube-apiserver (pid %d): %w", pid, err)
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if !filepath.IsAbs(args[0]) {
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			if err != nil {
				return 0, nil, fmt.Errorf("find the binary of kube-apiserver (pid %d): %w", pid, err)
			}
			args[0] = exe
		}
		return pid, args, nil
	}
	return 0, nil, errors.New("no kube-apiserver among this process's children")
}

// stopPID stops a process this package did not start (envtest waits for
// it): SIGTERM, then SIGKILL after 5 s, until it is gone. kube-apiserver
// drains its watches for up to a minute on SIGTERM; a restart that
// clients notice need not wait for that.
func stopPID(ctx context.Context, pid int) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop kube-apiserver (pid %d): %w", pid, err)
	}
	killAt := time.Now().Add(5 * time.Second)
	for {
		// envtest reaps it; until then it is a zombie, which counts as
		// gone, and so does a process with no /proc entry.
		if gone(pid) {
			return nil
		}
		if time.Now().After(killAt) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for kube-apiserver (pid %d) to stop: %w", pid, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// gone reports whether a process has exited: it has no /proc entry, or
// has not been reaped yet (state Z, the first field after the name).
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] == "Z"
}

// waitReady waits up to two minutes for the restarted API server to answer
// /readyz with 200, failing early if it exits.
func (cp *ControlPlane) waitReady(ctx context.Context, p *process) error {
	httpClient, err := rest.HTTPClientFor(cp.Config)
	if err != nil {
		return fmt.Errorf("build a client for /readyz: %w", err)
	}
	httpClient.Timeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	last := ""
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cp.Config.Host, "/")+"/readyz", nil)
		if err != nil {
			return err
		}
		if resp, err := httpClient.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = strconv.Itoa(resp.StatusCode) + " " + string(body)
		} else {
			last = err.Error()
		}
		select {
		case <-p.done:
			return fmt.Errorf("the restarted kube-apiserver exited: %s", tail(p.log.Name()))
		case <-ctx.Done():
			return fmt.Errorf("the restarted kube-apiserver is not ready (last answer: %s): %w", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
