package events

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientevents "k8s.io/client-go/tools/events"
)

// Observed is an Event as a Sluice controller recorded it.
type Observed struct {
	// Object is a copy of the object the Event is about, as the
	// controller saw it: its labels and status (the revision acted on)
	// tell more than the Event does.
	Object runtime.Object
	// Type is Normal or Warning.
	Type   string
	Reason string
	Action string
	Note   string
	// Controller is the recorder's component, such as sluice-sync.
	Controller string
	Time       time.Time
}

// Observer is told of every Event that Sluice's controllers record: the
// notification layer's Alerts read them here rather than watch the Events
// API. Observe must not block.
type Observer interface {
	Observe(Observed)
}

// observing records through a recorder and tells an Observer.
type observing struct {
	clientevents.EventRecorder
	component string
	observer  Observer
	now       func() time.Time
}

// Eventf records the Event, then hands it to the Observer.
func (o observing) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	o.EventRecorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
	if regarding == nil {
		return
	}
	o.observer.Observe(Observed{
		Object:     regarding.DeepCopyObject(),
		Type:       eventtype,
		Reason:     reason,
		Action:     action,
		Note:       fmt.Sprintf(note, args...),
		Controller: o.component,
		Time:       o.now(),
	})
}
