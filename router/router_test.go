package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	upstream, err := controlplane.UpstreamCRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true, CRDDirectoryPaths: append([]string{controlplane.SluiceCRDs()}, upstream...)}, &cp))
}

// setup creates a namespace with a target Deployment and a Canary on the
// kubernetes provider, and returns the Canary as stored.
func setup(t *testing.T, ns string, service sluicev1beta1.CanaryService) *sluicev1beta1.Canary {
	t.Helper()
	return setupCanary(t, ns, func(c *sluicev1beta1.Canary) { c.Spec.Service = service })
}

// setupCanary creates a namespace with a target Deployment and a Canary
// that change adapts, and returns the Canary as stored.
func setupCanary(t *testing.T, ns string, change func(*sluicev1beta1.Canary)) *sluicev1beta1.Canary {
	t.Helper()
	ctx := t.Context()
	labels := map[string]string{"app": "podinfo", "component": "api"}
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "podinfo", Ports: []corev1.ContainerPort{
						{Name: "http", ContainerPort: 9898}, {Name: "grpc", ContainerPort: 9999}, {Name: "metrics", ContainerPort: 15090},
					}}}},
				},
			},
		},
	}
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  "kubernetes",
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   sluicev1beta1.CanaryService{Port: 9898},
			Analysis:  &sluicev1beta1.CanaryAnalysis{Iterations: 3},
		},
	}
	change(c)
	objs = append(objs, c)
	for _, o := range objs {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func newRouter(t *testing.T) router.Router {
	t.Helper()
	r, err := router.New("kubernetes", router.Deps{Client: cp.Client, Scheme: cp.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func service(t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		t.Fatal(err)
	}
	return svc
}

func TestKubernetesRouter(t *testing.T) {
	ctx := t.Context()

	t.Run("initialize creates the primary and canary Services with the Canary's ports and metadata", func(t *testing.T) {
		c := setup(t, "init", sluicev1beta1.CanaryService{
			Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: "http", PortDiscovery: true,
			Primary: &sluicev1beta1.CustomMetadata{Labels: map[string]string{"tier": "primary"}},
			Canary:  &sluicev1beta1.CustomMetadata{Annotations: map[string]string{"note": "canary"}},
		})
		r := newRouter(t)
		if err := r.Initialize(ctx, c); err != nil {
			t.Fatal(err)
		}
		primary, canary := service(t, "init", "podinfo-primary"), service(t, "init", "podinfo-canary")
		want := map[string][2]any{
			"primary selector": {primary.Spec.Selector, map[string]string{"app": "podinfo-primary", "component": "api-primary"}},
			"canary selector":  {canary.Spec.Selector, map[string]string{"app": "podinfo", "component": "api"}},
			"primary labels":   {primary.Labels, map[string]string{"tier": "primary", "sluice.dev/canary": "podinfo"}},
			"canary note":      {canary.Annotations["note"], "canary"},
			"owner":            {metav1.IsControlledBy(primary, c) && metav1.IsControlledBy(canary, c), true},
		}
		for name, w := range want {
			if !reflect.DeepEqual(w[0], w[1]) {
				t.Errorf("%s: %v, want %v", name, w[0], w[1])
			}
		}
		var ports []string
		for _, p := range primary.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%s:%d->%s", p.Name, p.Port, p.TargetPort.String()))
		}
		if want := []string{"http:80->http", "grpc:9999->9999"}; !reflect.DeepEqual(ports, want) {
			t.Errorf("ports %v, want %v (the sidecar port left out)", ports, want)
		}
		if p := primary.Spec.Ports[0]; p.AppProtocol == nil || *p.AppProtocol != "http" {
			t.Errorf("appProtocol %v", p.AppProtocol)
		}
	})

	t.Run("a second pass over unchanged Services writes nothing", func(t *testing.T) {
		c := setup(t, "idempotent", sluicev1beta1.CanaryService{Port: 9898, Headless: true, TrafficDistribution: "PreferClose"})
		r := newRouter(t)
		for range 2 {
			if err := r.Initialize(ctx, c); err != nil {
				t.Fatal(err)
			}
			if err := r.Reconcile(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		versions := map[string]string{}
		for _, n := range []string{"podinfo", "podinfo-primary", "podinfo-canary"} {
			versions[n] = service(t, "idempotent", n).ResourceVersion
		}
		if err := r.Initialize(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := r.Reconcile(ctx, c); err != nil {
			t.Fatal(err)
		}
		for n, v := range versions {
			svc := service(t, "idempotent", n)
			if svc.ResourceVersion != v {
				t.Errorf("Service %s was written again", n)
			}
			if svc.Spec.ClusterIP != corev1.ClusterIPNone || svc.Spec.TrafficDistribution == nil {
				t.Errorf("Service %s: clusterIP %q trafficDistribution %v", n, svc.Spec.ClusterIP, svc.Spec.TrafficDistribution)
			}
		}
	})

	t.Run("a user's apex Service is adopted and given back on finalize", func(t *testing.T) {
		c := setup(t, "adopt", sluicev1beta1.CanaryService{Port: 9898, Apex: &sluicev1beta1.CustomMetadata{Annotations: map[string]string{"external-dns.alpha.kubernetes.io/hostname": "podinfo.example.com"}}})
		apex := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "adopt", Labels: map[string]string{"owner": "user"}},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "podinfo"},
				Ports:    []corev1.ServicePort{{Name: "web", Port: 8080, TargetPort: intstr.FromInt32(9898)}},
			},
		}
		if err := cp.Client.Create(ctx, apex); err != nil {
			t.Fatal(err)
		}
		r := newRouter(t)
		if err := r.Reconcile(ctx, c); err != nil {
			t.Fatal(err)
		}
		adopted := service(t, "adopt", "podinfo")
		var original map[string]any
		if err := json.Unmarshal([]byte(adopted.Annotations[sluicev1beta1.OriginalConfigurationAnnotation]), &original); err != nil {
			t.Fatalf("original configuration not recorded: %v", err)
		}
		if adopted.Spec.Selector["app"] != "podinfo-primary" || adopted.Labels["owner"] != "user" ||
			adopted.Annotations["external-dns.alpha.kubernetes.io/hostname"] != "podinfo.example.com" || len(adopted.OwnerReferences) != 0 {
			t.Fatalf("adopted Service %+v", adopted.ObjectMeta)
		}
		if err := r.Finalize(ctx, c); err != nil {
			t.Fatal(err)
		}
		restored := service(t, "adopt", "podinfo")
		if !reflect.DeepEqual(restored.Spec.Selector, map[string]string{"app": "podinfo"}) || restored.Spec.Ports[0].Name != "web" {
			t.Fatalf("restored selector %v ports %v", restored.Spec.Selector, restored.Spec.Ports)
		}
		if _, ok := restored.Annotations[sluicev1beta1.OriginalConfigurationAnnotation]; ok {
			t.Fatal("the original configuration annotation was left behind")
		}
	})

	t.Run("a generated apex Service outlives the Canary after finalize", func(t *testing.T) {
		c := setup(t, "generated", sluicev1beta1.CanaryService{Port: 9898})
		r := newRouter(t)
		if err := r.Reconcile(ctx, c); err != nil {
			t.Fatal(err)
		}
		if apex := service(t, "generated", "podinfo"); !metav1.IsControlledBy(apex, c) || apex.Spec.Selector["app"] != "podinfo-primary" {
			t.Fatalf("generated apex %+v selector %v", apex.OwnerReferences, apex.Spec.Selector)
		}
		if err := r.Finalize(ctx, c); err != nil {
			t.Fatal(err)
		}
		apex := service(t, "generated", "podinfo")
		if len(apex.OwnerReferences) != 0 || apex.Spec.Selector["app"] != "podinfo" {
			t.Fatalf("after finalize: owners %v selector %v", apex.OwnerReferences, apex.Spec.Selector)
		}
	})

	t.Run("unmanaged metadata is left alone on generated Services", func(t *testing.T) {
		c := setup(t, "unmanaged", sluicev1beta1.CanaryService{Port: 9898, UnmanagedMetadata: &sluicev1beta1.UnmanagedMetadata{Annotations: []string{"linkerd.io/inject"}}})
		r := newRouter(t)
		if err := r.Initialize(ctx, c); err != nil {
			t.Fatal(err)
		}
		svc := service(t, "unmanaged", "podinfo-canary")
		patch := client.MergeFrom(svc.DeepCopy())
		metav1.SetMetaDataAnnotation(&svc.ObjectMeta, "linkerd.io/inject", "enabled")
		metav1.SetMetaDataAnnotation(&svc.ObjectMeta, "stray", "x")
		if err := cp.Client.Patch(ctx, svc, patch); err != nil {
			t.Fatal(err)
		}
		if err := r.Initialize(ctx, c); err != nil {
			t.Fatal(err)
		}
		svc = service(t, "unmanaged", "podinfo-canary")
		if svc.Annotations["linkerd.io/inject"] != "enabled" || svc.Annotations["stray"] != "" {
			t.Fatalf("annotations %v: want the unmanaged key kept and the stray one removed", svc.Annotations)
		}
	})
}

func TestTheKubernetesRouterRoutesEverythingToThePrimary(t *testing.T) {
	r := newRouter(t)
	if caps := r.Capabilities(); caps != (traffic.Capabilities{}) {
		t.Fatalf("capabilities %+v, want none", caps)
	}
	routes, err := r.Routes(context.Background(), &sluicev1beta1.Canary{})
	if err != nil || routes != traffic.PrimaryOnly() {
		t.Fatalf("routes %v, %v", routes, err)
	}
	if err := r.SetRoutes(context.Background(), &sluicev1beta1.Canary{}, traffic.Weighted(10)); err == nil || !strings.Contains(err.Error(), "cannot route primary 90%, canary 10%") {
		t.Fatalf("a weighted split gave %v", err)
	}
}

func TestAProviderWithoutARouterIsAnErrorThatNamesIt(t *testing.T) {
	_, err := router.New("no-such-mesh", router.Deps{})
	if err == nil || !strings.Contains(err.Error(), `provider "no-such-mesh" has no router`) || !strings.Contains(err.Error(), "kubernetes") {
		t.Fatalf("got %v", err)
	}
}
