package events_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/events"
	"sluice.dev/sluice/test/controlplane"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

// eventsOf lists the core/v1 Events about a ConfigMap, as `kubectl get
// events` reads them.
func eventsOf(ctx context.Context, cm *corev1.ConfigMap) ([]corev1.Event, error) {
	var list corev1.EventList
	if err := cp.Client.List(ctx, &list, client.InNamespace(cm.Namespace)); err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.UID == cm.UID {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestEventsCarryTheTimestampsKubectlSortsBy(t *testing.T) {
	ctx := t.Context()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: "default"}}
	if err := cp.Client.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	b, err := events.NewBroadcaster(cp.Config, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Start(stop) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("broadcaster: %v", err)
		}
	})
	rec := b.Recorder(cp.Scheme, "sluice-test")

	before := time.Now().Add(-time.Second)
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Broken", "Check", "settings are %s", "broken")
	var first corev1.Event
	controlplane.Eventually(t, 10*time.Second, "the first Event", func(ctx context.Context) (bool, string) {
		list, err := eventsOf(ctx, cm)
		if err != nil || len(list) != 1 {
			return false, fmt.Sprintf("%d events, %v", len(list), err)
		}
		first = list[0]
		return true, ""
	})
	tests := []struct {
		name string
		ok   bool
	}{
		{"firstTimestamp is set", !first.FirstTimestamp.Time.Before(before)},
		{"lastTimestamp is set", !first.LastTimestamp.Time.Before(first.FirstTimestamp.Time)},
		{"count is 1", first.Count == 1},
		{"eventTime is kept", !first.EventTime.Time.Before(before)},
		{"the reason, action and note are kept", first.Reason == "Broken" && first.Action == "Check" && first.Message == "settings are broken" && first.Type == corev1.EventTypeWarning},
		{"the reporting controller is named", first.ReportingController == "sluice-test" && first.ReportingInstance != ""},
	}
	for _, tt := range tests {
		if !tt.ok {
			t.Errorf("%s: %+v", tt.name, first)
		}
	}

	// The same Event again is a series: one Event, counted twice.
	rec.Eventf(cm, nil, corev1.EventTypeWarning, "Broken", "Check", "settings are %s", "broken")
	controlplane.Eventually(t, 10*time.Second, "the repeated Event counted", func(ctx context.Context) (bool, string) {
		list, err := eventsOf(ctx, cm)
		if err != nil || len(list) != 1 {
			return false, fmt.Sprintf("%d events, %v", len(list), err)
		}
		e := list[0]
		return e.Count == 2 && e.Series != nil && e.Series.Count == 2 && !e.LastTimestamp.Before(&e.FirstTimestamp) && e.FirstTimestamp.Equal(&first.FirstTimestamp),
			fmt.Sprintf("count %d, series %+v, first %v, last %v", e.Count, e.Series, e.FirstTimestamp, e.LastTimestamp)
	})
}
