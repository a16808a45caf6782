package receiver

import (
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/sync/celexpr"
	"sluice.dev/sluice/test/controlplane"
)

// requestedAt is the reconcile request annotation of GitRepository name.
func requestedAt(t testing.TB, ns, name string) string {
	t.Helper()
	repo := &sourcev1.GitRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, repo); err != nil {
		t.Fatal(err)
	}
	return repo.Annotations[sourcev1.ReconcileRequestAnnotation]
}

func TestAResourceFilterAnnotatesOnlyTheResourcesItMatches(t *testing.T) {
	e := start(t, "receiver-filter")
	// A second repository with the label of the first, so that "*"
	// selects both.
	secret, other := e.git.Source(e.ns, "other", time.Hour)
	other.Labels = map[string]string{"team": "shop", "tier": "backend"}
	create(t, secret, other)
	byLabel := notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "*", MatchLabels: map[string]string{"team": "shop"}}
	byName := notificationv1.CrossNamespaceObjectReference{Kind: "GitRepository", Name: "other"}
	byBody := e.receiverWith(t, "by-body", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, Resources: []notificationv1.CrossNamespaceObjectReference{byLabel},
		ResourceFilter: "has(req.repository) && res.metadata.name == req.repository && res.kind == 'GitRepository' && res.apiVersion == 'source.sluice.dev/v1'"})
	// A resource named in the reference is read, so that its labels are
	// there to filter on.
	byTier := e.receiverWith(t, "by-tier", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, Resources: []notificationv1.CrossNamespaceObjectReference{byName},
		ResourceFilter: "res.metadata.labels.tier == 'frontend'"})
	byTeam := e.receiverWith(t, "by-team", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, Resources: []notificationv1.CrossNamespaceObjectReference{byName},
		ResourceFilter: "res.metadata.labels.team == 'shop'"})
	jsonType := map[string]string{"Content-Type": "application/json; charset=utf-8"}
	tests := []struct {
		name      string
		path      string
		headers   map[string]string
		body      string
		code      int
		annotated []string
	}{
		{"a call naming app in its JSON body annotates app only", byBody, jsonType, `{"repository": "app"}`, http.StatusOK, []string{"app"}},
		{"a call naming other annotates other only", byBody, jsonType, `{"repository": "other"}`, http.StatusOK, []string{"other"}},
		{"a body that is not JSON by its type is an empty req and annotates nothing", byBody, nil, `{"repository": "app"}`, http.StatusOK, nil},
		{"a JSON body that is not an object is malformed", byBody, jsonType, `["app"]`, http.StatusBadRequest, nil},
		{"a named resource whose labels match is annotated", byTeam, nil, `{}`, http.StatusOK, []string{"other"}},
		{"a named resource whose labels do not match is not annotated", byTier, nil, `{}`, http.StatusOK, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]string{"app": requestedAt(t, e.ns, "app"), "other": requestedAt(t, e.ns, "other")}
			if code := e.send(t, http.MethodPost, tt.path, tt.headers, strings.NewReader(tt.body)); code != tt.code {
				t.Fatalf("status %d, want %d", code, tt.code)
			}
			for name, was := range before {
				want := false
				for _, a := range tt.annotated {
					want = want || a == name
				}
				if got := requestedAt(t, e.ns, name) != was; got != want {
					t.Errorf("GitRepository %s asked to reconcile: %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestAResourceFilterThatDoesNotCompileMakesTheReceiverNotReady(t *testing.T) {
	e := start(t, "receiver-bad-filter")
	path := e.receiverWith(t, "hook", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver,
		Resources:      []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}},
		ResourceFilter: "res.metadata.name == 'app'"})
	rcv := &notificationv1.Receiver{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "hook"}, rcv); err != nil {
		t.Fatal(err)
	}
	rcv.Spec.ResourceFilter = "res.metadata.name =="
	if err := cp.Client.Update(t.Context(), rcv); err != nil {
		t.Fatal(err)
	}
	controlplane.Eventually(t, 30*time.Second, "Receiver not Ready for its resourceFilter", func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, client.ObjectKeyFromObject(rcv), rcv); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(rcv.Status.Conditions, "Ready")
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == notificationv1.ReasonInvalidCELExpression &&
			strings.HasPrefix(c.Message, "spec.resourceFilter: invalid CEL expression") && c.ObservedGeneration == rcv.Generation, fmt.Sprintf("%+v", rcv.Status)
	})
	if !meta.IsStatusConditionTrue(rcv.Status.Conditions, "Stalled") {
		t.Fatalf("conditions %+v, want Stalled: only a new spec can fix it", rcv.Status.Conditions)
	}
	controlplane.Eventually(t, 10*time.Second, "a Warning Event naming spec.resourceFilter", func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list, client.InNamespace(e.ns)); err != nil {
			return false, err.Error()
		}
		for _, ev := range list.Items {
			if ev.Regarding.Name == "hook" && ev.Type == corev1.EventTypeWarning && ev.Reason == notificationv1.ReasonInvalidCELExpression && strings.Contains(ev.Note, "spec.resourceFilter") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(list.Items))
	})
	// The path stays, but a call is refused until the spec is fixed.
	before := requestedAt(t, e.ns, "app")
	if code := e.send(t, http.MethodPost, path, nil, strings.NewReader("{}")); code != http.StatusServiceUnavailable {
		t.Fatalf("a call got %d, want 503", code)
	}
	if requestedAt(t, e.ns, "app") != before {
		t.Fatal("a call to a Receiver with a broken filter asked for a reconcile")
	}
}

func TestAResourceFilterSeesTheRegistryNotificationOfAGCRPush(t *testing.T) {
	key := testKey(t)
	google := httptest.NewServer(jwks(t, map[string]*rsa.PublicKey{"k1": &key.PublicKey}))
	t.Cleanup(google.Close)
	rcv := &notificationv1.Receiver{Spec: notificationv1.ReceiverSpec{Type: notificationv1.GCRReceiver, ResourceFilter: "req.tag == 'v1.2.3'",
		Resources: []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}}}}
	spec, err := compileSpec(&celexpr.Cache{}, rcv)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"message": {"data": "eyJhY3Rpb24iOiJJTlNFUlQiLCJ0YWciOiJ2MS4yLjMifQ==", "messageId": "1"}, "subscription": "s"}`)
	header := http.Header{"Content-Type": []string{"application/json"}, "Authorization": []string{"Bearer " + signJWT(t, key, "k1", nil)}}
	// The check decodes the push once; the filter reads what it found.
	v, err := verify(t.Context(), deps{google: newGoogleKeys(google.URL, google.Client())}, rcv.Spec.Type, &Call{Header: header, Body: body,
		Secret: map[string][]byte{"token": []byte(hookToken), "audience": []byte(hookAudience), "email": []byte(hookEmail)}, Now: time.Now()})
	if err != nil || !v.Trigger {
		t.Fatalf("verdict %+v, %v", v, err)
	}
	f, err := newResourceFilter(spec, rcv.Spec.Type, header, body, v)
	if err != nil {
		t.Fatal(err)
	}
	if f.req["action"] != "INSERT" || f.req["tag"] != "v1.2.3" {
		t.Fatalf("req %v, want the notification inside the push", f.req)
	}
}
