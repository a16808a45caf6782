package receiver

import (
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
)

// TestAReceiverComesBackAtItsInterval reconciles Receivers with and
// without spec.interval: the status is refreshed at the interval, every
// ten minutes when it is unset, as in Flux.
func TestAReceiverComesBackAtItsInterval(t *testing.T) {
	t.Parallel()
	const ns = "rcv-interval"
	create(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hook", Namespace: ns}, StringData: map[string]string{"token": hookToken}},
	)
	tests := []struct {
		name     string
		interval *metav1.Duration
		want     time.Duration
	}{
		{"spec.interval sets when the status is refreshed", &metav1.Duration{Duration: 30 * time.Second}, 30 * time.Second},
		{"without it the status is refreshed every ten minutes", nil, 10 * time.Minute},
	}
	r := &Reconciler{Client: cp.Client, Events: events.NewFakeRecorder(10)}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := &notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: "hook-" + string(rune('a'+i)), Namespace: ns}, Spec: notificationv1.ReceiverSpec{
				Type: notificationv1.GenericReceiver, Interval: tt.interval, SecretRef: &notificationv1.LocalObjectReference{Name: "hook"},
				Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}},
			}}
			create(t, rcv)
			res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(rcv)})
			if err != nil {
				t.Fatal(err)
			}
			if res.RequeueAfter != tt.want {
				t.Fatalf("requeue after %s, want %s", res.RequeueAfter, tt.want)
			}
		})
	}
}

// TestAResourceWithoutANamespaceIsLookedForInTheReceivers calls two
// Receivers that name a GitRepository "app", which two namespaces hold:
// one without a namespace asks the one in its own namespace to
// reconcile, and one with a namespace the one there.
func TestAResourceWithoutANamespaceIsLookedForInTheReceivers(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-own-ns")
	const other = "rcv-other-ns"
	secret, repo := e.git.Source(other, "app", time.Hour)
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, secret, repo)
	tests := []struct {
		name string
		ref  notificationv1.CrossNamespaceObjectReference
		// requested are the namespaces whose GitRepository has been asked
		// to reconcile after the call, and spared those not yet.
		requested, spared []string
	}{
		{"without a namespace the Receiver's own is meant", notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "app"}, []string{e.ns}, []string{other}},
		{"a namespace names another", notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "app", Namespace: other}, []string{e.ns, other}, nil},
	}
	for i, tt := range tests {
		path := e.receiverWith(t, "hook-"+string(rune('a'+i)), notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, Resources: []notificationv1.CrossNamespaceObjectReference{tt.ref}})
		if code := e.call(t, http.MethodPost, path, nil); code != http.StatusOK {
			t.Fatalf("%s: the call got %d, want 200", tt.name, code)
		}
		for _, ns := range tt.requested {
			if annotation(t, ns) == "" {
				t.Errorf("%s: the GitRepository of %s was not asked to reconcile", tt.name, ns)
			}
		}
		for _, ns := range tt.spared {
			if got := annotation(t, ns); got != "" {
				t.Errorf("%s: the GitRepository of %s was asked to reconcile (%s)", tt.name, ns, got)
			}
		}
	}
}
