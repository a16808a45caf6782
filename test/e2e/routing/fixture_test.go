package routing

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
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
	"sluice.dev/sluice/test/inprocess"
)

// gate is a webhook that answers 200 while open and 403 once closed.
type gate struct {
	*httptest.Server
	mu     sync.Mutex
	closed bool
	calls  int
}

func newGate(t *testing.T) *gate {
	g := &gate{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.calls++
		if g.closed {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(g.Close)
	return g
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// fixture is a namespace with a Deployment to release, published
// Services, and an in-process operator.
type fixture struct {
	t  *testing.T
	ns string
}

// newFixture creates the namespace, the target Deployment and the
// EndpointSlices of the Canary's three Services, and starts the operator.
func newFixture(t *testing.T, ns string) *fixture {
	t.Helper()
	f := &fixture{t: t, ns: ns}
	labels := map[string]string{"app": "podinfo"}
	f.create(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "podinfo:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}}}}},
				},
			},
		},
	)
	publish(t, ns, "podinfo", primaryPort)
	publish(t, ns, "podinfo-primary", primaryPort)
	publish(t, ns, "podinfo-canary", canaryPort)
	inprocess.Start(t, cp.Config, ns, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))
	return f
}

func (f *fixture) create(objs ...client.Object) {
	f.t.Helper()
	for _, o := range objs {
		if err := cp.Client.Create(f.t.Context(), o); err != nil {
			f.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// canary is a Canary of the fixture's Deployment on port 80.
func (f *fixture) canary(provider sluicev1beta1.Provider, analysis sluicev1beta1.CanaryAnalysis, change func(*sluicev1beta1.Canary)) *sluicev1beta1.Canary {
	if analysis.Interval == "" {
		analysis.Interval = "10s"
	}
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.ns},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  provider,
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromString("http")},
			Analysis:  &analysis,
		},
	}
	if change != nil {
		change(c)
	}
	f.create(c)
	return c
}

func (f *fixture) get() *sluicev1beta1.Canary {
	f.t.Helper()
	c := &sluicev1beta1.Canary{}
	if err := cp.Client.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: "podinfo"}, c); err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fixture) waitFor(what string, timeout time.Duration, cond func(*sluicev1beta1.Canary) bool) *sluicev1beta1.Canary {
	f.t.Helper()
	var c *sluicev1beta1.Canary
	controlplane.Eventually(f.t, timeout, what, func(context.Context) (bool, string) {
		c = f.get()
		return cond(c), fmt.Sprintf("phase %s weight %d iterations %d conditions %v", c.Status.Phase, c.Status.CanaryWeight, c.Status.Iterations, c.Status.Conditions)
	})
	return c
}

func (f *fixture) waitPhase(phase sluicev1beta1.CanaryPhase, timeout time.Duration) *sluicev1beta1.Canary {
	f.t.Helper()
	return f.waitFor("phase "+string(phase), timeout, func(c *sluicev1beta1.Canary) bool { return c.Status.Phase == phase })
}

// release changes the target's image, making a new revision.
func (f *fixture) release(image string) {
	f.t.Helper()
	d := &appsv1.Deployment{}
	if err := cp.Client.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: "podinfo"}, d); err != nil {
		f.t.Fatal(err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := cp.Client.Patch(f.t.Context(), d, patch); err != nil {
		f.t.Fatal(err)
	}
}

// routes reads the split from the objects the Canary's router wrote.
func (f *fixture) routes(c *sluicev1beta1.Canary) traffic.Routes {
	f.t.Helper()
	r, err := router.New(c.Spec.Provider, router.Deps{Client: cp.Client, Scheme: cp.Scheme})
	if err != nil {
		f.t.Fatal(err)
	}
	routes, err := r.Routes(f.t.Context(), c)
	if err != nil {
		f.t.Fatal(err)
	}
	return routes
}
