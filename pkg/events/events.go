// Package events records Sluice's Kubernetes Events. client-go's
// events.k8s.io broadcaster does the recording, the deduplication and the
// series; its sink here writes each Event through the core/v1 API with
// firstTimestamp, lastTimestamp and count filled in beside eventTime.
// The events.k8s.io API refuses those fields, and without them `kubectl
// get events --sort-by=.lastTimestamp` sorts Sluice's Events first, with
// <nil>.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	clientevents "k8s.io/client-go/tools/events"
)

// Broadcaster sends the Events of its recorders to the API server. It is
// a controller-runtime Runnable: it stops with the manager, on every
// replica.
type Broadcaster struct {
	broadcaster clientevents.EventBroadcaster
	stop        context.CancelFunc
	// observer, when set, is told of every Event recorded.
	observer Observer
}

// NewBroadcaster starts recording to the API server of cfg at once, so
// that no Event recorded before the manager starts is lost. The observer,
// when not nil, is told of every Event its recorders record.
func NewBroadcaster(cfg *rest.Config, observer Observer) (*Broadcaster, error) {
	c, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("events client: %w", err)
	}
	b := clientevents.NewBroadcaster(Sink{Events: c})
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		cancel()
		return nil, fmt.Errorf("start recording events: %w", err)
	}
	return &Broadcaster{broadcaster: b, stop: cancel, observer: observer}, nil
}

// Recorder records Events as the controller named component.
func (b *Broadcaster) Recorder(scheme *runtime.Scheme, component string) clientevents.EventRecorder {
	r := b.broadcaster.NewRecorder(scheme, component)
	if b.observer == nil {
		return r
	}
	return observing{EventRecorder: r, component: component, observer: b.observer, now: time.Now}
}

// Start waits for ctx to end, then stops recording.
func (b *Broadcaster) Start(ctx context.Context) error {
	<-ctx.Done()
	b.stop()
	b.broadcaster.Shutdown()
	return nil
}

// NeedLeaderElection is false: a standby replica records Events too (its
// Receivers and probes).
func (b *Broadcaster) NeedLeaderElection() bool { return false }

// Sink is client-go's events sink over the core/v1 API.
type Sink struct {
	Events corev1client.EventsGetter
}

var _ clientevents.EventSink = Sink{}

// Create writes a new Event.
func (s Sink) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	created, err := s.Events.Events(e.Namespace).Create(ctx, toCore(e), metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	return fromCore(created), nil
}

// Update replaces an Event.
func (s Sink) Update(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	updated, err := s.Events.Events(e.Namespace).Update(ctx, toCore(e), metav1.UpdateOptions{})
	if err != nil {
		return nil, err
	}
	return fromCore(updated), nil
}

// Patch records that e happened again. The broadcaster's patch is written
// for events.k8s.io; this one carries the same series, with the count and
// last timestamp kubectl reads.
func (s Sink) Patch(ctx context.Context, e *eventsv1.Event, _ []byte) (*eventsv1.Event, error) {
	last, count := lastSeen(e)
	patch := map[string]any{"count": count, "lastTimestamp": last}
	if e.Series != nil {
		patch["series"] = corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("encode event patch: %w", err)
	}
	patched, err := s.Events.Events(e.Namespace).Patch(ctx, e.Name, types.MergePatchType, data, metav1.PatchOptions{})
	if err != nil {
		return nil, err
	}
	return fromCore(patched), nil
}

// lastSeen is when an Event last happened and how often it did.
func lastSeen(e *eventsv1.Event) (metav1.Time, int32) {
	if e.Series != nil {
		return metav1.NewTime(e.Series.LastObservedTime.Time), e.Series.Count
	}
	return metav1.NewTime(e.EventTime.Time), 1
}

// toCore is e in the core/v1 API, with the legacy timestamps and count.
func toCore(e *eventsv1.Event) *corev1.Event {
	last, count := lastSeen(e)
	c := &corev1.Event{
		ObjectMeta:          e.ObjectMeta,
		InvolvedObject:      e.Regarding,
		Reason:              e.Reason,
		Message:             e.Note,
		FirstTimestamp:      metav1.NewTime(e.EventTime.Time),
		LastTimestamp:       last,
		Count:               count,
		Type:                e.Type,
		EventTime:           e.EventTime,
		Action:              e.Action,
		Related:             e.Related,
		ReportingController: e.ReportingController,
		ReportingInstance:   e.ReportingInstance,
	}
	if !e.DeprecatedFirstTimestamp.IsZero() {
		c.FirstTimestamp = e.DeprecatedFirstTimestamp
	}
	if e.Series != nil {
		c.Series = &corev1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
	}
	return c
}

// fromCore is c in the events.k8s.io API.
func fromCore(c *corev1.Event) *eventsv1.Event {
	e := &eventsv1.Event{
		ObjectMeta:               c.ObjectMeta,
		EventTime:                c.EventTime,
		ReportingController:      c.ReportingController,
		ReportingInstance:        c.ReportingInstance,
		Action:                   c.Action,
		Reason:                   c.Reason,
		Regarding:                c.InvolvedObject,
		Related:                  c.Related,
		Note:                     c.Message,
		Type:                     c.Type,
		DeprecatedFirstTimestamp: c.FirstTimestamp,
		DeprecatedLastTimestamp:  c.LastTimestamp,
		DeprecatedCount:          c.Count,
	}
	if c.Series != nil {
		e.Series = &eventsv1.EventSeries{Count: c.Series.Count, LastObservedTime: c.Series.LastObservedTime}
	}
	return e
}
