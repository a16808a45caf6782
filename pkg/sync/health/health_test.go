package health_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/fluxcd/cli-utils/pkg/object"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/sync/health"
	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{}, &cp))
}

func deployment(ns, name string, nodeSelector map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{NodeSelector: nodeSelector, Containers: []corev1.Container{{Name: "app", Image: "podinfo:1"}}},
			},
		},
	}
}

func id(ns, name, group, kind string) object.ObjMetadata {
	return object.ObjMetadata{Namespace: ns, Name: name, GroupKind: schema.GroupKind{Group: group, Kind: kind}}
}

// cachedChecker is a Checker reading through a manager's cached client
// that caches unstructured objects too, as the operator's does.
func cachedChecker(t *testing.T) *health.Checker {
	t.Helper()
	mgr := cp.StartManager(t, func(ctrl.Manager) error { return nil })
	if !mgr.GetCache().WaitForCacheSync(t.Context()) {
		t.Fatal("cache did not sync")
	}
	c, err := client.New(cp.Config, client.Options{Scheme: cp.Scheme, Mapper: mgr.GetRESTMapper(),
		Cache: &client.CacheOptions{Reader: mgr.GetCache(), Unstructured: true}})
	if err != nil {
		t.Fatal(err)
	}
	return &health.Checker{Reader: c, Scheme: cp.Scheme, Mapper: mgr.GetRESTMapper(), Informers: mgr.GetCache(), Live: mgr.GetAPIReader()}
}

func TestCheckJudgesObjectsByKstatusFromTheCache(t *testing.T) {
	ctx := t.Context()
	ns := "health"
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}},
		deployment(ns, "app", nil),
		deployment(ns, "stuck", map[string]string{"no-such-node": "true"}),
	} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	checker := cachedChecker(t)
	healthy := object.ObjMetadataSet{
		id(ns, "settings", "", "ConfigMap"), id(ns, "app", "apps", "Deployment"), id("", ns, "", "Namespace"),
	}

	t.Run("objects that roll out become healthy", func(t *testing.T) {
		controlplane.Eventually(t, 30*time.Second, "healthy", func(ctx context.Context) (bool, string) {
			rep, err := checker.Check(ctx, healthy)
			if err != nil {
				return false, err.Error()
			}
			return rep.Healthy(), rep.Problems()
		})
	})
	t.Run("a Deployment that cannot roll out is in progress and named", func(t *testing.T) {
		rep, err := checker.Check(ctx, append(healthy, id(ns, "stuck", "apps", "Deployment")))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.InProgress) != 1 || rep.InProgress[0].ID.Name != "stuck" || rep.Waiting() != "Deployment/health/stuck" {
			t.Fatalf("in progress %v, want the stuck Deployment alone", rep.InProgress)
		}
	})
	t.Run("an object not created yet is in progress, not an error", func(t *testing.T) {
		rep, err := checker.Check(ctx, object.ObjMetadataSet{id(ns, "later", "", "ConfigMap")})
		if err != nil || len(rep.InProgress) != 1 || rep.InProgress[0].Status != status.NotFoundStatus {
			t.Fatalf("report %+v, error %v: want NotFound in progress", rep, err)
		}
	})
	t.Run("a wait names what held it up when it times out", func(t *testing.T) {
		err := checker.Wait(ctx, object.ObjMetadataSet{id(ns, "app", "apps", "Deployment"), id(ns, "stuck", "apps", "Deployment")}, 2*time.Second, 500*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "timeout waiting for") || !strings.Contains(err.Error(), "Deployment/health/stuck status: 'InProgress'") ||
			strings.Contains(err.Error(), "health/app") {
			t.Fatalf("error %v, want a timeout naming the stuck Deployment alone", err)
		}
	})
	t.Run("a read the cache cannot answer in time is made live", func(t *testing.T) {
		// As for a kind the operator may get but not watch, whose informer
		// never syncs.
		stalled := *checker
		stalled.SyncTimeout = time.Nanosecond
		rep, err := stalled.Check(ctx, object.ObjMetadataSet{id(ns, "settings", "", "ConfigMap")})
		if err != nil || !rep.Healthy() {
			t.Fatalf("report %+v, error %v", rep, err)
		}
	})
}
