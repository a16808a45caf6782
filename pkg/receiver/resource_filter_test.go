package receiver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/test/controlplane"
)

// TestAResourcesFilterStacksWithTheResourceFilter calls Receivers shaped
// like Flux's per-resource filtering example: an entry's filter applies
// to the objects that entry matches only, and a resource is asked to
// reconcile when both it and spec.resourceFilter (where set) are true.
func TestAResourcesFilterStacksWithTheResourceFilter(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-per-resource")
	// app (team shop, from start) is in production; other, of the same
	// team, is in staging; web has neither label.
	if err := cp.Client.Patch(t.Context(), &sourcev1.GitRepository{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: e.ns}},
		client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"environment":"production"}}}`))); err != nil {
		t.Fatal(err)
	}
	otherSecret, other := e.git.Source(e.ns, "other", time.Hour)
	other.Labels = map[string]string{"team": "shop", "environment": "staging"}
	webSecret, web := e.git.Source(e.ns, "web", time.Hour)
	create(t, otherSecret, other, webSecret, web)
	resources := []notificationv1.CrossNamespaceObjectReference{
		{Kind: "GitRepository", Name: "*", MatchLabels: map[string]string{"team": "shop"}, Filter: "res.metadata.labels['environment'] == 'production'"},
		{Kind: "GitRepository", Name: "web"},
	}
	stacked := e.receiverWith(t, "stacked", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, Resources: resources,
		ResourceFilter: "req.tag.contains(res.metadata.name)"})
	alone := e.receiverWith(t, "alone", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, Resources: resources})
	tests := []struct {
		name      string
		path      string
		tag       string
		annotated []string
	}{
		{"both true annotates", stacked, "registry.example.com/shop/app:1.2.3", []string{"app"}},
		{"the entry's filter false spares a resource the resourceFilter matches", stacked, "registry.example.com/shop/other:1.2.3", nil},
		{"an entry without a filter answers to the resourceFilter alone", stacked, "registry.example.com/shop/app-other-web:1.2.3", []string{"app", "web"}},
		{"the resourceFilter false spares a resource the entry's filter matches", stacked, "registry.example.com/shop/unrelated:1.2.3", nil},
		{"an entry's filter alone filters that entry's objects only", alone, "anything", []string{"app", "web"}},
	}
	names := []string{"app", "other", "web"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := map[string]string{}
			for _, n := range names {
				before[n] = requestedAt(t, e.ns, n)
			}
			body := fmt.Sprintf(`{"action":"INSERT","tag":%q}`, tt.tag)
			if code := e.send(t, http.MethodPost, tt.path, map[string]string{"Content-Type": "application/json"}, strings.NewReader(body)); code != http.StatusOK {
				t.Fatalf("status %d, want 200", code)
			}
			for _, n := range names {
				if got, want := requestedAt(t, e.ns, n) != before[n], slices.Contains(tt.annotated, n); got != want {
					t.Errorf("GitRepository %s asked to reconcile: %v, want %v", n, got, want)
				}
			}
		})
	}
}

// TestAReconcileRequestOnTheReceiverIsRecordedAsHandled annotates
// Receivers, a Ready one and a stalled one, with a reconcile request:
// each is reconciled at once and shows the value in
// status.lastHandledReconcileAt, as Flux's Receiver does.
func TestAReconcileRequestOnTheReceiverIsRecordedAsHandled(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-requested")
	app := []notificationv1.CrossNamespaceObjectReference{{Kind: "GitRepository", Name: "app"}}
	e.receiverWith(t, "ready", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, Resources: app, Interval: &metav1.Duration{Duration: time.Hour}})
	create(t, &notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: "stalled", Namespace: e.ns}, Spec: notificationv1.ReceiverSpec{
		Type: notificationv1.GenericReceiver, SecretRef: &notificationv1.LocalObjectReference{Name: "hook"}, Resources: app, ResourceFilter: "res.metadata.name =="}})
	for _, name := range []string{"ready", "stalled"} {
		t.Run(name, func(t *testing.T) {
			key := client.ObjectKey{Namespace: e.ns, Name: name}
			for _, requested := range []string{"2026-01-02T03:04:05Z", "again"} {
				patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, sourcev1.ReconcileRequestAnnotation, requested)
				if err := cp.Client.Patch(t.Context(), &notificationv1.Receiver{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}}, client.RawPatch(types.MergePatchType, patch)); err != nil {
					t.Fatal(err)
				}
				controlplane.Eventually(t, 30*time.Second, "lastHandledReconcileAt "+requested, func(ctx context.Context) (bool, string) {
					rcv := &notificationv1.Receiver{}
					if err := cp.Client.Get(ctx, key, rcv); err != nil {
						return false, err.Error()
					}
					return rcv.Status.LastHandledReconcileAt == requested, fmt.Sprintf("%+v", rcv.Status)
				})
			}
		})
	}
	// Answering the request changed nothing else.
	rcv := &notificationv1.Receiver{}
	if err := cp.Client.Get(t.Context(), client.ObjectKey{Namespace: e.ns, Name: "ready"}, rcv); err != nil {
		t.Fatal(err)
	}
	if !meta.IsStatusConditionTrue(rcv.Status.Conditions, "Ready") || rcv.Status.WebhookPath != WebhookPath(hookToken, "ready", e.ns) {
		t.Fatalf("status %+v, want Ready at its path", rcv.Status)
	}
}

// readCounter counts the reads of objects as metadata, by name, through
// the manager's client: the reads a resource filter makes.
type readCounter struct {
	client.Client

	mu    sync.Mutex
	reads map[string]int
}

func (c *readCounter) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*metav1.PartialObjectMetadata); ok {
		c.mu.Lock()
		c.reads[key.Name]++
		c.mu.Unlock()
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

func (c *readCounter) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads[name]
}

// TestOnlyTheResourcesAFilterAppliesToAreReadForIt calls a Receiver
// whose first entry has a filter and whose second has none, with no
// spec.resourceFilter: the filtered resource is read so that its filter
// sees its labels, the other is annotated without a read.
func TestOnlyTheResourcesAFilterAppliesToAreReadForIt(t *testing.T) {
	t.Parallel()
	e := start(t, "rcv-filter-reads")
	webSecret, web := e.git.Source(e.ns, "web", time.Hour)
	create(t, webSecret, web)
	path := e.receiverWith(t, "reads", notificationv1.ReceiverSpec{Type: notificationv1.GenericReceiver, Resources: []notificationv1.CrossNamespaceObjectReference{
		{Kind: "GitRepository", Name: "app", Filter: "res.metadata.labels['team'] == 'shop'"},
		{Kind: "GitRepository", Name: "web"},
	}})
	reads := &readCounter{Client: e.mgr.GetClient(), reads: map[string]int{}}
	hook := httptest.NewServer(&Handler{Client: reads, Log: logr.Discard()})
	t.Cleanup(hook.Close)
	before := map[string]string{"app": requestedAt(t, e.ns, "app"), "web": requestedAt(t, e.ns, "web")}
	resp, err := http.Post(hook.URL+path, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	for _, name := range []string{"app", "web"} {
		if requestedAt(t, e.ns, name) == before[name] {
			t.Errorf("GitRepository %s was not asked to reconcile", name)
		}
	}
	if n := reads.count("app"); n != 1 {
		t.Errorf("app, which a filter reads, was read %d times, want 1", n)
	}
	if n := reads.count("web"); n != 0 {
		t.Errorf("web, which no filter reads, was read %d times, want 0", n)
	}
}
