package router_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
	"sluice.dev/sluice/router"
)

// staleClient serves reads of the objects it holds from snapshots taken
// earlier, as an informer cache that has not caught up does, and every
// other read and all writes from the API server.
type staleClient struct {
	client.Client
	snapshots map[string]client.Object
}

func staleKey(obj client.Object, key client.ObjectKey) string {
	return fmt.Sprintf("%T %s %s", obj, obj.GetObjectKind().GroupVersionKind().Kind, key)
}

func (s *staleClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if snap, ok := s.snapshots[staleKey(obj, key)]; ok {
		reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(snap.DeepCopyObject()).Elem())
		return nil
	}
	return s.Client.Get(ctx, key, obj, opts...)
}

// TestNoRouterPutsBackASplitFromAStaleCache takes a snapshot of each
// router's routing object at canary weight 20, moves the split to 60,
// changes the Canary's port, and reconciles through a cache that still
// holds the snapshot. The write must fail with a conflict, to be retried,
// and leave the split at 60.
func TestNoRouterPutsBackASplitFromAStaleCache(t *testing.T) {
	unstructuredOf := func(apiVersion, kind string) func() client.Object {
		return func() client.Object {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion(apiVersion)
			u.SetKind(kind)
			return u
		}
	}
	createIngress := func(t *testing.T, c *sluicev1beta1.Canary) {
		ing := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: c.Namespace},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "app.example.com", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "podinfo", Port: networkingv1.ServiceBackendPort{Number: 9898}}}}},
			}}}}},
		}
		if err := cp.Client.Create(t.Context(), ing); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		provider sluicev1beta1.Provider
		object   string
		newObj   func() client.Object
		ingress  bool
	}{
		{"gatewayapi:v1", "podinfo", func() client.Object { return &gatewayv1.HTTPRoute{} }, false},
		{"istio", "podinfo", func() client.Object { return &istionetworkingv1.VirtualService{} }, false},
		{"nginx", "web-canary", func() client.Object { return &networkingv1.Ingress{} }, true},
		{"skipper", "web-canary", func() client.Object { return &networkingv1.Ingress{} }, true},
		{"traefik", "podinfo", unstructuredOf("traefik.io/v1alpha1", "TraefikService"), false},
		{"linkerd", "podinfo", unstructuredOf("split.smi-spec.io/v1alpha2", "TrafficSplit"), false},
	}
	for _, tt := range tests {
		t.Run(string(tt.provider), func(t *testing.T) {
			ctx := t.Context()
			ns := "stale-" + sanitizeName(string(tt.provider))
			c := setupCanary(t, ns, func(c *sluicev1beta1.Canary) {
				c.Spec.Provider = tt.provider
				c.Spec.Service = sluicev1beta1.CanaryService{Port: 9898, Hosts: []string{"app.example.com"}}
				c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: "1m", StepWeight: 20, MaxWeight: 60}
				if tt.ingress {
					c.Spec.IngressRef = &sluicev1beta1.LocalObjectReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "web"}
				}
			})
			if tt.ingress {
				createIngress(t, c)
			}
			live := routerFor(t, tt.provider)
			for _, do := range []func() error{
				func() error { return live.Initialize(ctx, c) },
				func() error { return live.Reconcile(ctx, c) },
				func() error { return live.SetRoutes(ctx, c, traffic.Weighted(20)) },
			} {
				if err := do(); err != nil {
					t.Fatal(err)
				}
			}

			// The snapshot is the object at weight 20, and it also lacks
			// the Canary's label, so that reconciling wants to write.
			key := client.ObjectKey{Namespace: ns, Name: tt.object}
			snap := tt.newObj()
			if err := cp.Client.Get(ctx, key, snap); err != nil {
				t.Fatal(err)
			}
			labels := snap.GetLabels()
			delete(labels, "sluice.dev/canary")
			snap.SetLabels(labels)
			if err := live.SetRoutes(ctx, c, traffic.Weighted(60)); err != nil {
				t.Fatal(err)
			}
			// A new port changes the lists that hold the weights, so that
			// a write from the snapshot would carry its weights along.
			c.Spec.Service.Port = 9899

			stale, err := router.New(tt.provider, router.Deps{Scheme: cp.Scheme, Client: &staleClient{
				Client: cp.Client, snapshots: map[string]client.Object{staleKey(tt.newObj(), key): snap},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if err := stale.Reconcile(ctx, c); !apierrors.IsConflict(err) {
				t.Fatalf("reconciling from the stale snapshot gave %v, want a conflict", err)
			}
			if got, err := live.Routes(ctx, c); err != nil || got != traffic.Weighted(60) {
				t.Fatalf("after the stale reconcile the router holds %v (%v), want %v", got, err, traffic.Weighted(60))
			}
		})
	}
}

func sanitizeName(s string) string {
	out := []byte(s)
	for i, b := range out {
		if (b < 'a' || b > 'z') && (b < '0' || b > '9') {
			out[i] = '-'
		}
	}
	return string(out)
}
