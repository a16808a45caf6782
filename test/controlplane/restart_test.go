package controlplane_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/test/controlplane"
)

func TestTheAPIServerRestartsWithItsDataAndCredentials(t *testing.T) {
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "restart"}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept", Namespace: ns.Name}, Data: map[string]string{"k": "v"}}
	for _, o := range []client.Object{ns, cm} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		down, err := cp.RestartAPIServer(ctx)
		if err != nil {
			t.Fatalf("restart %d: %v", i+1, err)
		}
		t.Logf("restart %d: down for %s", i+1, down.Round(time.Millisecond))
		// The same admin credentials and address still work, and what was
		// stored is still there.
		controlplane.Eventually(t, 30*time.Second, "the ConfigMap reads back", func(ctx context.Context) (bool, string) {
			got := &corev1.ConfigMap{}
			if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(cm), got); err != nil {
				return false, err.Error()
			}
			return got.Data["k"] == "v", got.String()
		})
	}
}
