// Package routing runs Canaries through every router on a real control
// plane with the routing APIs' real CRDs, and sends real HTTP requests
// through Traefik and Skipper to backends in a test-made network namespace.
package routing

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/netns"
	"sluice.dev/sluice/test/traefik"
)

var (
	cp *controlplane.ControlPlane
	// dp is the data plane shared by the tests.
	dp *dataplane
)

// The backends' ports in the network namespace.
const (
	primaryPort = 8081
	canaryPort  = 8082
	// mirroredCanaryPort is a canary backend of the mirroring test alone,
	// whose served count no other test adds to.
	mirroredCanaryPort = 8085
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	upstream, err := controlplane.UpstreamCRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var controllers []string
	for _, c := range controlplane.DefaultControllers() {
		// The tests write EndpointSlices that point at real backends.
		if c != "endpointslice" {
			controllers = append(controllers, c)
		}
	}
	opts := controlplane.Options{Controllers: controllers, CRDDirectoryPaths: append([]string{controlplane.SluiceCRDs()}, upstream...)}
	return controlplane.RunTests(m, opts, &cp, func(cp *controlplane.ControlPlane) (func(), error) {
		var err error
		dp, err = startDataplane(cp)
		if err != nil {
			return nil, err
		}
		return dp.close, nil
	})
}

// dataplane is the backend and the proxies.
type dataplane struct {
	ns *netns.Namespace
	// traefik and skipper are the proxies' HTTP addresses; traefikPort is
	// also the port of the Gateway listener.
	traefik     string
	traefikPort int
	traefikAPI  string
	skipper     string
	// skipperSupport serves Skipper's /routes and /metrics.
	skipperSupport string
}

func (d *dataplane) close() {
	if d.ns != nil {
		_ = d.ns.Close()
	}
}

func startDataplane(cp *controlplane.ControlPlane) (_ *dataplane, err error) {
	skipperDir, err := controlplane.SkipperDir()
	if err != nil {
		return nil, err
	}
	d := &dataplane{}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.ns, err = netns.Create(); err != nil {
		return nil, err
	}

	backend := filepath.Join(cp.Dir, "backend")
	build := exec.Command("go", "build", "-o", backend, "./test/backend")
	build.Dir = controlplane.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the test backend: %w\n%s", err, out)
	}
	if err := cp.Run("backend", d.ns.Command(backend,
		fmt.Sprintf("--listen=%s:%d=primary", d.ns.IP, primaryPort),
		fmt.Sprintf("--listen=%s:%d=canary", d.ns.IP, canaryPort),
		fmt.Sprintf("--listen=%s:%d=primary,errors=%g,delay=%s", d.ns.IP, measuredPrimaryPort, measuredPrimary.errorRatio, measuredPrimary.latency),
		fmt.Sprintf("--listen=%s:%d=canary,errors=%g,delay=%s", d.ns.IP, measuredCanaryPort, measuredCanary.errorRatio, measuredCanary.latency),
		fmt.Sprintf("--listen=%s:%d=canary,errors=%g,delay=%s", d.ns.IP, measuredSkipperCanaryPort, measuredCanary.errorRatio, measuredCanary.latency),
		fmt.Sprintf("--listen=%s:%d=canary", d.ns.IP, mirroredCanaryPort))); err != nil {
		return nil, err
	}

	proxy, err := traefik.Start(context.Background(), cp, traefik.Options{CRD: true, API: true})
	if err != nil {
		return nil, err
	}
	d.traefik, d.traefikPort, d.traefikAPI = proxy.Addr, proxy.Port, proxy.API

	token, ca, err := proxyCredentials(cp)
	if err != nil {
		return nil, err
	}
	skipperAddr, err := controlplane.FreeAddr()
	if err != nil {
		return nil, err
	}
	supportAddr, err := controlplane.FreeAddr()
	if err != nil {
		return nil, err
	}
	d.skipper, d.skipperSupport = skipperAddr, supportAddr
	skipper := exec.Command(filepath.Join(skipperDir, "skipper"),
		"-kubernetes", "-kubernetes-url="+strings.TrimSuffix(cp.Config.Host, "/"), "-kubernetes-token-file="+token,
		"-enable-kubernetes-endpointslices", "-address="+skipperAddr, "-support-listener="+supportAddr,
		"-source-poll-timeout=500", "-kubernetes-https-redirect=false", "-wait-for-healthcheck-interval=0", "-access-log-disabled",
		// Its own Prometheus metrics on the support listener, per route,
		// status code and method.
		"-metrics-flavour=prometheus", "-serve-route-metrics", "-serve-status-code-metric", "-serve-method-metric",
		"-histogram-metric-buckets="+traefik.LatencyBuckets)
	skipper.Env = append(os.Environ(), "SSL_CERT_FILE="+ca)
	if err := cp.Run("skipper", skipper); err != nil {
		return nil, err
	}
	if err := controlplane.WaitHTTP(context.Background(), "http://"+supportAddr+"/metrics"); err != nil {
		return nil, fmt.Errorf("skipper: %w; log:\n%s", err, cp.Log("skipper"))
	}
	return d, nil
}

// proxyCredentials gives Skipper, which reads the API with a bearer token
// and the system's CA pool, a cluster-admin ServiceAccount token and the
// API server's CA.
func proxyCredentials(cp *controlplane.ControlPlane) (tokenFile, caFile string, err error) {
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "proxies", Namespace: "default"}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "proxies"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "proxies", Namespace: "default"}},
	}
	for _, o := range []client.Object{sa, binding} {
		if err := cp.Client.Create(ctx, o); err != nil {
			return "", "", fmt.Errorf("create %T: %w", o, err)
		}
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}}
	if err := cp.Client.SubResource("token").Create(ctx, sa, req); err != nil {
		return "", "", fmt.Errorf("request a token: %w", err)
	}
	tokenFile, caFile = filepath.Join(cp.Dir, "proxies.token"), filepath.Join(cp.Dir, "ca.crt")
	if err := os.WriteFile(tokenFile, []byte(req.Status.Token), 0o600); err != nil {
		return "", "", err
	}
	return tokenFile, caFile, os.WriteFile(caFile, cp.Config.CAData, 0o600)
}

// publish writes the EndpointSlice of a Service: its pods are the backend
// in the network namespace, on the given port.
func publish(t *testing.T, ns, service string, port int32) {
	t.Helper()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: ns, Labels: map[string]string{
			discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: "sluice-tests",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{dp.ns.IP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: &port, Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if err := cp.Client.Create(t.Context(), slice); err != nil {
		t.Fatal(err)
	}
}

// send makes n requests through a proxy and counts the answers by backend.
func send(t *testing.T, addr, host string, n int, header map[string]string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	c := &http.Client{Timeout: 5 * time.Second}
	for range n {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(resp.Body).ReadString('\n')
		_ = resp.Body.Close()
		name := strings.TrimSpace(line)
		if resp.StatusCode != http.StatusOK {
			name = resp.Status
		}
		counts[name]++
	}
	return counts
}

// waitTraefikSettled waits until Traefik's dynamic configuration holds
// want and has not changed for longer than its reload throttle (2s). It
// sends no request, so that the balancers Traefik built for that
// configuration are fresh when a test starts counting: Traefik's weighted
// round robin is exact over whole periods from its start.
func waitTraefikSettled(t *testing.T, want string) {
	t.Helper()
	var last string
	var since time.Time
	controlplane.Eventually(t, 30*time.Second, "Traefik's configuration holds "+want+" and settles", func(ctx context.Context) (bool, string) {
		resp, err := http.Get("http://" + dp.traefikAPI + "/api/rawdata")
		if err != nil {
			return false, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return false, err.Error()
		}
		if !strings.Contains(string(body), want) {
			return false, string(body)
		}
		if string(body) != last {
			last, since = string(body), time.Now()
		}
		return time.Since(since) > 3*time.Second, "still changing"
	})
}

// waitServed waits until a proxy sends requests for host to the backend
// that answers want, while the proxy catches up with the objects written.
func waitServed(t *testing.T, addr, host string, header map[string]string, want string) {
	t.Helper()
	controlplane.Eventually(t, 30*time.Second, "the proxy serves "+host, func(context.Context) (bool, string) {
		got := send(t, addr, host, 1, header)
		return got[want] == 1, fmt.Sprintf("answered %v", got)
	})
}
