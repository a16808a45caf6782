// Package traefik runs Traefik, built by `make dataplane`, as the Gateway
// API implementation of a test control plane: it reads the HTTPRoutes
// Sluice writes from the API server and splits real traffic by them.
package traefik

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"sluice.dev/sluice/test/controlplane"
)

// The Gateway that Start creates, for Canaries' gatewayRefs.
const (
	GatewayNamespace = "gateways"
	GatewayName      = "public"
)

// Options choose Traefik's providers beyond the Gateway API.
type Options struct {
	// CRD turns on the Traefik CRD provider (TraefikService), with
	// cross-namespace references.
	CRD bool
	// API serves Traefik's API (/api/rawdata) on the API address.
	API bool
}

// Proxy is a running Traefik.
type Proxy struct {
	// Addr is the host:port of its web entry point, which the Gateway's
	// listener names.
	Addr string
	// Port is Addr's port.
	Port int
	// API is the host:port of its ping (and, with Options.API, API)
	// entry point.
	API string
}

// Start runs Traefik as a process of cp (stopped with it, its log as
// cp.Log("traefik")), waits until it answers, and creates the
// GatewayClass and the Gateway GatewayNamespace/GatewayName on its web
// entry point. The Gateway API CRDs must be installed.
func Start(ctx context.Context, cp *controlplane.ControlPlane, opts Options) (*Proxy, error) {
	dir, err := controlplane.TraefikDir()
	if err != nil {
		return nil, err
	}
	p := &Proxy{}
	if p.Addr, err = controlplane.FreeAddr(); err != nil {
		return nil, err
	}
	if p.API, err = controlplane.FreeAddr(); err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(p.Addr, ":")
	if p.Port, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("traefik port of %s: %w", p.Addr, err)
	}
	args := []string{
		"--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
		"--entryPoints.web.address=" + p.Addr, "--entryPoints.traefik.address=" + p.API,
		"--ping=true", "--log.level=INFO", "--providers.kubernetesGateway=true",
		// Its own Prometheus metrics on the API entry point, with buckets
		// fine enough for a latency check (the defaults are 0.1, 0.3, 1.2, 5).
		"--metrics.prometheus=true", "--metrics.prometheus.entryPoint=traefik",
		"--metrics.prometheus.buckets=" + LatencyBuckets,
	}
	if opts.CRD {
		args = append(args, "--providers.kubernetesCRD=true", "--providers.kubernetesCRD.allowCrossNamespace=true")
	}
	if opts.API {
		args = append(args, "--api.insecure=true")
	}
	cmd := exec.Command(filepath.Join(dir, "traefik"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig)
	if err := cp.Run("traefik", cmd); err != nil {
		return nil, fmt.Errorf("start traefik: %w", err)
	}
	if err := controlplane.WaitHTTP(ctx, "http://"+p.API+"/ping"); err != nil {
		return nil, fmt.Errorf("traefik: %w; log:\n%s", err, cp.Log("traefik"))
	}
	if err := createGateway(ctx, cp.Client, p.Port); err != nil {
		return nil, err
	}
	return p, nil
}

// LatencyBuckets are the bounds, in seconds, of the latency histograms of
// the test proxies.
const LatencyBuckets = "0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10"

// createGateway makes the GatewayClass that Traefik implements and a
// Gateway with a listener on its web entry point, open to routes of every
// namespace.
func createGateway(ctx context.Context, c client.Client, port int) error {
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: GatewayNamespace}},
		&gatewayv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: "traefik"}, Spec: gatewayv1.GatewayClassSpec{ControllerName: "traefik.io/gateway-controller"}},
		&gatewayv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: GatewayName, Namespace: GatewayNamespace},
			Spec: gatewayv1.GatewaySpec{GatewayClassName: "traefik", Listeners: []gatewayv1.Listener{{
				Name: "web", Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.HTTPProtocolType,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}},
			}}},
		},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %T %s: %w", o, o.GetName(), err)
		}
	}
	return nil
}
