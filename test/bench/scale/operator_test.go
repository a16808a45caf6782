package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"sluice.dev/sluice/test/chaos"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/manifests"
)

// endpoints are the operator's listen addresses, free loopback ports in
// place of the pod's.
type endpoints struct {
	metrics, probes, receiver, pprof string
}

func freeAddrs() (endpoints, error) {
	var e endpoints
	for _, addr := range []*string{&e.metrics, &e.probes, &e.receiver, &e.pprof} {
		a, err := controlplane.FreeAddr()
		if err != nil {
			return e, err
		}
		*addr = a
	}
	return e, nil
}

// operatorArgs are the arguments of the kustomize install's operator
// container, with the pod's listen addresses moved to loopback ports,
// plus what the pod gets from its environment (the kubeconfig of its
// ServiceAccount, its namespace for the lease) and the pprof endpoint.
func operatorArgs(kubeconfig string, e endpoints) ([]string, error) {
	objs, err := manifests.KustomizeBuild(filepath.Join(controlplane.RepoRoot(), "kustomize"))
	if err != nil {
		return nil, err
	}
	podArgs, err := containerArgs(manifests.Select(objs, "Deployment"), "sluice")
	if err != nil {
		return nil, err
	}
	return withAddresses(podArgs, kubeconfig, e), nil
}

// containerArgs are the args of the named container of the only
// Deployment.
func containerArgs(deployments []*unstructured.Unstructured, name string) ([]string, error) {
	if len(deployments) != 1 {
		return nil, fmt.Errorf("the kustomize install has %d Deployments, want 1", len(deployments))
	}
	containers, _, err := unstructured.NestedSlice(deployments[0].Object, "spec", "template", "spec", "containers")
	if err != nil {
		return nil, fmt.Errorf("read the operator's containers: %w", err)
	}
	for _, c := range containers {
		c, ok := c.(map[string]any)
		if !ok || c["name"] != name {
			continue
		}
		args, _, err := unstructured.NestedStringSlice(c, "args")
		if err != nil {
			return nil, fmt.Errorf("read the args of container %s: %w", name, err)
		}
		return args, nil
	}
	return nil, fmt.Errorf("no container %s in the operator's Deployment", name)
}

// withAddresses replaces the pod's listen addresses in args and adds
// what a pod has from its environment.
func withAddresses(args []string, kubeconfig string, e endpoints) []string {
	addrs := map[string]string{
		"--metrics-bind-address":      e.metrics,
		"--health-probe-bind-address": e.probes,
		"--receiver-bind-address":     e.receiver,
	}
	out := []string{
		"--kubeconfig=" + kubeconfig,
		// A pod's POD_NAMESPACE.
		"--leader-election-namespace=" + chaos.OperatorNamespace,
		"--pprof-bind-address=" + e.pprof,
	}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if addr, ok := addrs[name]; ok {
			a = name + "=" + addr
		}
		out = append(out, a)
	}
	return out
}

// fetchProfile saves a profile from the pprof endpoint at base (the
// operator's, or kube-apiserver's) to file, waiting up to 30 s for the
// endpoint to listen.
func fetchProfile(ctx context.Context, hc *http.Client, base, path, file string) error {
	url := base + path
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() == nil && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("GET %s: %w", url, err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		_, copyErr := io.Copy(f, resp.Body)
		return errors.Join(copyErr, f.Close())
	}
}

// operatorRequests reads the operator's own count of its API requests,
// client-go's rest_client_requests_total, summed by method.
func operatorRequests(ctx context.Context, metricsAddr string) (map[string]float64, error) {
	url := "http://" + metricsAddr + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape the operator's metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape the operator's metrics: %s", resp.Status)
	}
	return sumByLabel(resp.Body, "rest_client_requests_total", "method")
}

// sumByLabel sums the series of a counter by the value of one label.
func sumByLabel(r io.Reader, counter, label string) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	sums := map[string]float64{}
	for _, m := range families[counter].GetMetric() {
		value := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				value = l.GetValue()
			}
		}
		sums[value] += m.GetCounter().GetValue()
	}
	return sums, nil
}

// perMinute is what grew from before to after, a minute over minutes,
// leaving out what did not grow.
func perMinute(before, after map[string]float64, minutes float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d / minutes
		}
	}
	return out
}

// processCPU is the CPU time, user and system, of every process on the
// machine, summed by command name (/proc/<pid>/stat's comm, at most 15
// characters): the control plane's, the operator's and anything else
// that ran beside them.
func processCPU() (map[string]time.Duration, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	out := map[string]time.Duration{}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		// A process may end between the listing and the read.
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		name, cpu, ok := parseStat(string(data))
		if ok {
			out[name] += cpu
		}
	}
	return out, nil
}

// parseStat reads the command name and the user and system CPU time of
// a /proc/<pid>/stat line. The name, in parentheses, may hold spaces and
// parentheses: the fields count from after its last ')'.
func parseStat(stat string) (string, time.Duration, bool) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	fields := strings.Fields(stat[end+1:])
	if len(fields) < 13 {
		return "", 0, false
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return "", 0, false
		}
		ticks += n
	}
	// USER_HZ is 100 on Linux.
	return stat[open+1 : end], time.Duration(ticks) * 10 * time.Millisecond, true
}

// cpuShares is, largest first, the CPU time each command used between
// two readings of processCPU, leaving out those under a second.
func cpuShares(before, after map[string]time.Duration) []share {
	var out []share
	for name, t := range after {
		if d := t - before[name]; d >= time.Second {
			out = append(out, share{name: name, cpu: d})
		}
	}
	slices.SortFunc(out, func(a, b share) int {
		if a.cpu != b.cpu {
			return cmpDuration(b.cpu, a.cpu)
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// share is the CPU time of one command.
type share struct {
	name string
	cpu  time.Duration
}

func cmpDuration(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
