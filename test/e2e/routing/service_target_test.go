package routing

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/traefik"
)

// TestAServiceTargetIsReleasedByCopyingItsSpec releases a Canary whose
// target is a Service, as Flagger does: the user points their Service at
// each new version's pods; -canary follows it at once, -primary gets its
// spec on promotion, and a rolled back version never reaches -primary.
// The target Service itself is never changed.
func TestAServiceTargetIsReleasedByCopyingItsSpec(t *testing.T) {
	cases := []struct {
		provider sluicev1beta1.Provider
		analysis sluicev1beta1.CanaryAnalysis
		// weights are those of the promoted release.
		weights []int
		setup   func(*sluicev1beta1.Canary)
	}{
		{provider: "gatewayapi:v1", analysis: sluicev1beta1.CanaryAnalysis{Threshold: 1, StepWeights: []int{20, 60}}, weights: []int{20, 60},
			setup: func(c *sluicev1beta1.Canary) {
				c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: traefik.GatewayName, Namespace: ptr.To(gatewayv1.Namespace(traefik.GatewayNamespace))}}
			}},
		{provider: "kubernetes", analysis: sluicev1beta1.CanaryAnalysis{Threshold: 1, Iterations: 2}},
	}
	for _, tc := range cases {
		t.Run(string(tc.provider), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "service-target-"+sanitize(string(tc.provider)))
			target := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: f.Name, Labels: map[string]string{"team": "web"}},
				Spec: corev1.ServiceSpec{
					Type:     corev1.ServiceTypeNodePort,
					Selector: map[string]string{"app": "podinfo", "version": "v1"},
					Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
				},
			}
			f.Create(target)
			hook := newGate(t)
			analysis := tc.analysis
			analysis.Webhooks = []sluicev1beta1.CanaryWebhook{{Name: "load", Type: sluicev1beta1.RolloutHook, URL: hook.URL}}
			f.canary(tc.provider, analysis, func(c *sluicev1beta1.Canary) {
				c.Spec.TargetRef = sluicev1beta1.TargetReference{APIVersion: "v1", Kind: "Service", Name: "podinfo"}
				if tc.setup != nil {
					tc.setup(c)
				}
			})
			f.WaitPhase(sluicev1beta1.CanaryPhaseInitialized, time.Minute)
			wantSelects(t, f.Name, "podinfo-primary", "v1")
			wantSelects(t, f.Name, "podinfo-canary", "v1")
			if got := service(t, f.Name, "podinfo-primary"); got.Spec.Type != corev1.ServiceTypeClusterIP || got.Spec.Ports[0].Port != 80 {
				t.Fatalf("the primary copy is %s on port %d, want ClusterIP on 80", got.Spec.Type, got.Spec.Ports[0].Port)
			}

			release := func(version string) {
				controlplane.Eventually(t, 10*time.Second, "select "+version, func(ctx context.Context) (bool, string) {
					svc := service(t, f.Name, "podinfo")
					svc.Spec.Selector["version"] = version
					err := cp.Client.Update(ctx, svc)
					return err == nil, fmt.Sprint(err)
				})
			}
			release("v2")
			f.WaitFor("the release starts", time.Minute, func(c *sluicev1beta1.Canary) bool {
				return c.Status.Phase == sluicev1beta1.CanaryPhaseProgressing
			})
			// The canary's share goes to what the target selects now; the
			// primary keeps the promoted version.
			wantSelects(t, f.Name, "podinfo-canary", "v2")
			wantSelects(t, f.Name, "podinfo-primary", "v1")
			if weights := f.followSteps(sluicev1beta1.CanaryPhaseSucceeded); !slices.Equal(weights, tc.weights) {
				t.Fatalf("the promoted release went through weights %v, want %v", weights, tc.weights)
			}
			wantSelects(t, f.Name, "podinfo-primary", "v2")
			if got := f.routes(f.Canary()); got != traffic.PrimaryOnly() {
				t.Fatalf("after the promotion the router holds %v", got)
			}

			hook.close()
			release("v3")
			f.WaitPhase(sluicev1beta1.CanaryPhaseFailed, 2*time.Minute)
			wantSelects(t, f.Name, "podinfo-primary", "v2")
			wantSelects(t, f.Name, "podinfo-canary", "v3")
			if got := f.routes(f.Canary()); got != traffic.PrimaryOnly() {
				t.Fatalf("after the rollback the router holds %v", got)
			}
			// Sluice wrote none of the user's Service.
			svc := service(t, f.Name, "podinfo")
			if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Spec.Selector["version"] != "v3" || !maps.Equal(svc.Labels, map[string]string{"team": "web"}) || len(svc.OwnerReferences) > 0 {
				t.Fatalf("the target Service was changed: %+v %+v", svc.ObjectMeta, svc.Spec)
			}
		})
	}
}

func service(t *testing.T, ns, name string) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		t.Fatal(err)
	}
	return svc
}

// wantSelects checks the version a Service selects, waiting briefly: the
// copies are written by the reconcile that follows the change.
func wantSelects(t *testing.T, ns, name, version string) {
	t.Helper()
	controlplane.Eventually(t, 15*time.Second, name+" selects "+version, func(ctx context.Context) (bool, string) {
		svc := &corev1.Service{}
		if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
			return false, err.Error()
		}
		return svc.Spec.Selector["version"] == version, fmt.Sprintf("selector %v", svc.Spec.Selector)
	})
}
