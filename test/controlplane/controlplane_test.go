package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}

func podTemplate(labels map[string]string, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: image}},
		},
	}
}

func deploymentComplete(c client.Client, key client.ObjectKey, image string) func(ctx context.Context) (bool, string) {
	return func(ctx context.Context) (bool, string) {
		var d appsv1.Deployment
		if err := c.Get(ctx, key, &d); err != nil {
			return false, err.Error()
		}
		want := *d.Spec.Replicas
		s := d.Status
		done := s.ObservedGeneration == d.Generation && s.UpdatedReplicas == want &&
			s.ReadyReplicas == want && s.AvailableReplicas == want && s.Replicas == want &&
			d.Spec.Template.Spec.Containers[0].Image == image
		return done, fmt.Sprintf("deployment %s status %+v", key, s)
	}
}

func TestWorkloadsRollOutThroughTheRealControllers(t *testing.T) {
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rollout"}}
	if err := cp.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}

	t.Run("a Deployment becomes Ready and completes an image change", func(t *testing.T) {
		labels := map[string]string{"app": "podinfo"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns.Name},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](3),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: podTemplate(labels, "podinfo:6.0.0"),
			},
		}
		created := time.Now()
		if err := cp.Client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		controlplane.Eventually(t, time.Minute, "the Deployment is Ready", deploymentComplete(cp.Client, client.ObjectKeyFromObject(d), "podinfo:6.0.0"))
		t.Logf("3 replicas Ready %s after create", time.Since(created).Round(time.Millisecond))

		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Template.Spec.Containers[0].Image = "podinfo:6.0.1"
		changed := time.Now()
		if err := cp.Client.Patch(ctx, d, patch); err != nil {
			t.Fatal(err)
		}
		controlplane.Eventually(t, time.Minute, "the rollout completes", deploymentComplete(cp.Client, client.ObjectKeyFromObject(d), "podinfo:6.0.1"))
		t.Logf("image change rolled out %s after the patch", time.Since(changed).Round(time.Millisecond))

		var pods corev1.PodList
		if err := cp.Client.List(ctx, &pods, client.InNamespace(ns.Name), client.MatchingLabels(labels)); err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Spec.Containers[0].Image == "podinfo:6.0.1" && p.Status.PodIP != "" {
				running++
			}
		}
		if running != 3 {
			t.Fatalf("want 3 pods of the new image with an IP, have %d of %d", running, len(pods.Items))
		}
	})

	t.Run("a DaemonSet runs one ready pod on the fake node", func(t *testing.T) {
		labels := map[string]string{"app": "agent"}
		ds := &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns.Name},
			Spec: appsv1.DaemonSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: podTemplate(labels, "agent:1"),
			},
		}
		if err := cp.Client.Create(ctx, ds); err != nil {
			t.Fatal(err)
		}
		controlplane.Eventually(t, time.Minute, "the DaemonSet is Ready", func(ctx context.Context) (bool, string) {
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(ds), ds); err != nil {
				return false, err.Error()
			}
			s := ds.Status
			return s.ObservedGeneration == ds.Generation && s.DesiredNumberScheduled == 1 && s.NumberReady == 1,
				fmt.Sprintf("daemonset status %+v", s)
		})
	})

	t.Run("a Service gets EndpointSlices with the pods' addresses", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns.Name},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "podinfo"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 9898}},
			},
		}
		if err := cp.Client.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		controlplane.Eventually(t, time.Minute, "the Service has 3 ready endpoints", func(ctx context.Context) (bool, string) {
			var slices discoveryv1.EndpointSliceList
			if err := cp.Client.List(ctx, &slices, client.InNamespace(ns.Name),
				client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
				return false, err.Error()
			}
			ready := 0
			for _, s := range slices.Items {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						ready++
					}
				}
			}
			return ready == 3, fmt.Sprintf("%d ready endpoints", ready)
		})
	})
}

func TestPinnedVersionsMatchTheWrapperModules(t *testing.T) {
	tests := []struct {
		module, path, version string
	}{
		{"kube", "k8s.io/kubernetes", controlplane.KubernetesVersion},
		{"etcd", "go.etcd.io/etcd/server/v3", controlplane.EtcdVersion},
		{"kwok", "sigs.k8s.io/kwok", controlplane.KwokVersion},
	}
	for _, tt := range tests {
		t.Run(tt.path+" is pinned at v"+tt.version, func(t *testing.T) {
			gomod, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "test", "tools", tt.module, "go.mod"))
			if err != nil {
				t.Fatal(err)
			}
			pin := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(tt.path+" v"+tt.version) + `(\s|$)`)
			if !pin.Match(gomod) {
				t.Fatalf("test/tools/%s/go.mod does not require %s v%s", tt.module, tt.path, tt.version)
			}
		})
	}
}
