package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	notificationv1beta3 "sluice.dev/sluice/api/notification/v1beta3"
	"sluice.dev/sluice/pkg/events"
)

// +kubebuilder:rbac:groups=notification.sluice.dev,resources=alerts;providers,verbs=get;list;watch
// +kubebuilder:rbac:groups=notification.sluice.dev,resources=alerts/status;providers/status,verbs=get;update;patch

// observed is a recorded Event waiting to be matched to Alerts.
type observed = events.Observed

var _ events.Observer = (*Dispatcher)(nil)

// Observe queues an Event for the Alerts that select its object. It never
// blocks: when the queue is full the Event is dropped, counted and logged.
func (d *Dispatcher) Observe(o events.Observed) {
	select {
	case d.events <- o:
	default:
		d.dropped.Add(1)
		d.opts.Log.Error(errors.New("the event queue is full"), "event not sent to Alerts", "reason", o.Reason)
	}
}

// routeEvents matches queued Events to Alerts until ctx is done.
func (d *Dispatcher) routeEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-d.events:
			if err := d.route(ctx, o); err != nil {
				d.opts.Log.Error(err, "event not sent to Alerts", "reason", o.Reason)
			}
		}
	}
}

// route sends an Event to every Alert that selects it.
func (d *Dispatcher) route(ctx context.Context, o observed) error {
	e, objLabels, err := d.eventOf(o)
	if err != nil {
		return err
	}
	var alerts notificationv1beta3.AlertList
	if err := d.opts.Reader.List(ctx, &alerts); err != nil {
		return fmt.Errorf("list Alerts: %w", err)
	}
	for i := range alerts.Items {
		a := &alerts.Items[i]
		if !d.selects(a, e, objLabels) {
			continue
		}
		if err := d.alert(ctx, a, e, objLabels); err != nil {
			d.opts.Log.Error(err, "event not sent", "alert", nameOf(a), "object", e.InvolvedObject.Kind+"/"+e.InvolvedObject.Namespace+"/"+e.InvolvedObject.Name, "reason", e.Reason)
		}
	}
	return nil
}

// nameOf names an object as namespace/name for logs.
func nameOf(o metav1.Object) string { return o.GetNamespace() + "/" + o.GetName() }

// eventOf is a recorded Event in Flux's format, with its object's labels.
func (d *Dispatcher) eventOf(o observed) (Event, map[string]string, error) {
	obj, err := meta.Accessor(o.Object)
	if err != nil {
		return Event{}, nil, fmt.Errorf("event %s: %w", o.Reason, err)
	}
	gvk := o.Object.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" && d.opts.Scheme != nil {
		if gvk, err = apiutil.GVKForObject(o.Object, d.opts.Scheme); err != nil {
			return Event{}, nil, fmt.Errorf("event %s: %w", o.Reason, err)
		}
	}
	e := Event{
		InvolvedObject: corev1.ObjectReference{
			Kind: gvk.Kind, APIVersion: gvk.GroupVersion().String(), Namespace: obj.GetNamespace(), Name: obj.GetName(),
			UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Severity:            severityInfo,
		Timestamp:           metav1.NewTime(o.Time),
		Message:             o.Note,
		Reason:              o.Reason,
		ReportingController: o.Controller,
	}
	if o.Type == corev1.EventTypeWarning {
		e.Severity = severityError
	}
	if rev := revisionOf(o.Object); rev != "" {
		e.Metadata = map[string]string{metaRevision: rev}
	}
	return e, obj.GetLabels(), nil
}

// revisionFields are where the sync kinds keep the revision an Event is
// about, in the order they are read: the one last tried, then the source's
// artifact, then the one last applied.
var revisionFields = [][]string{
	{"status", "lastAttemptedRevision"},
	{"status", "artifact", "revision"},
	{"status", "lastAppliedRevision"},
}

// revisionOf reads the revision of a sync object, "" for other kinds.
func revisionOf(obj runtime.Object) string {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return ""
	}
	for _, path := range revisionFields {
		var v any = u
		for _, k := range path {
			m, ok := v.(map[string]any)
			if !ok {
				v = nil
				break
			}
			v = m[k]
		}
		if s, ok := v.(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// selects says whether an Alert sends an Event: it is not suspended, the
// Event is of its severity, one of its sources names the object, and its
// inclusion and exclusion lists let the message through.
func (d *Dispatcher) selects(a *notificationv1beta3.Alert, e Event, objLabels map[string]string) bool {
	if a.Spec.Suspend || (a.Spec.EventSeverity == notificationv1beta3.SeverityError && e.Severity == severityInfo) {
		return false
	}
	if !slices.ContainsFunc(a.Spec.EventSources, func(s notificationv1beta3.CrossNamespaceObjectReference) bool {
		return sourceSelects(a.Namespace, s, e.InvolvedObject, objLabels)
	}) {
		return false
	}
	include, exclude, err := d.patterns(a)
	if err != nil {
		// The Alert's status says so; nothing is sent until it is fixed.
		return false
	}
	if len(include) > 0 && !slices.ContainsFunc(include, func(re *regexp.Regexp) bool { return re.MatchString(e.Message) }) {
		return false
	}
	return !slices.ContainsFunc(exclude, func(re *regexp.Regexp) bool { return re.MatchString(e.Message) })
}

// sourceSelects says whether an event source names an object.
func sourceSelects(alertNamespace string, s notificationv1beta3.CrossNamespaceObjectReference, obj corev1.ObjectReference, objLabels map[string]string) bool {
	if s.Kind != obj.Kind || cmpOr(s.Namespace, alertNamespace) != obj.Namespace {
		return false
	}
	if s.APIVersion != "" {
		want, err := schema.ParseGroupVersion(s.APIVersion)
		have, _ := schema.ParseGroupVersion(obj.APIVersion)
		if err != nil || want.Group != have.Group {
			return false
		}
	}
	if s.Name != "*" {
		return s.Name == obj.Name
	}
	return labels.SelectorFromSet(s.MatchLabels).Matches(labels.Set(objLabels))
}

func cmpOr(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// patterns compiles an Alert's inclusion and exclusion lists.
func (d *Dispatcher) patterns(a *notificationv1beta3.Alert) (include, exclude []*regexp.Regexp, err error) {
	compile := func(field string, list []string) ([]*regexp.Regexp, error) {
		out := make([]*regexp.Regexp, 0, len(list))
		for i, p := range list {
			re, err := d.regexp(p)
			if err != nil {
				return nil, fmt.Errorf("spec.%s[%d]: %w", field, i, err)
			}
			out = append(out, re)
		}
		return out, nil
	}
	if include, err = compile("inclusionList", a.Spec.InclusionList); err != nil {
		return nil, nil, err
	}
	if exclude, err = compile("exclusionList", a.Spec.ExclusionList); err != nil {
		return nil, nil, err
	}
	return include, exclude, nil
}

// regexp compiles a pattern once.
func (d *Dispatcher) regexp(pattern string) (*regexp.Regexp, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if re, ok := d.regexps[pattern]; ok {
		return re, nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	d.regexps[pattern] = re
	return re, nil
}

// alert sends an Event through an Alert to its Provider, once within the
// rate limit's window.
func (d *Dispatcher) alert(ctx context.Context, a *notificationv1beta3.Alert, e Event, objLabels map[string]string) error {
	var p notificationv1beta3.Provider
	key := types.NamespacedName{Namespace: a.Namespace, Name: a.Spec.ProviderRef.Name}
	if err := d.opts.Reader.Get(ctx, key, &p); err != nil {
		// A missing Provider is in the Alert's status.
		return fmt.Errorf("read Provider %s: %w", key, err)
	}
	if p.Spec.Suspend {
		return nil
	}
	e.Metadata = withAlertMetadata(e.Metadata, a)
	spec := fromProvider(&p)
	if !d.firstInWindow(rateKey(a, spec.key, e)) {
		return nil
	}
	res, err := d.resolve(ctx, spec)
	if err != nil {
		return fmt.Errorf("provider %s: %w", key, err)
	}
	n := note{event: e, message: eventMessage(e, d.opts.ClusterName, escapeFor(spec.typ)), labels: objLabels}
	dl, err := newDelivery(spec, res, n)
	if errors.Is(err, errNotApplicable) {
		return nil
	} else if err != nil {
		return fmt.Errorf("provider %s: %w", key, err)
	}
	d.enqueue(dl)
	return nil
}

// withAlertMetadata adds an Alert's eventMetadata and summary to an
// Event's metadata; a key the Event has keeps its value, as in Flux.
func withAlertMetadata(meta map[string]string, a *notificationv1beta3.Alert) map[string]string {
	out := maps.Clone(meta)
	if out == nil {
		out = map[string]string{}
	}
	add := func(k, v string) {
		if _, ok := out[k]; !ok && v != "" {
			out[k] = v
		}
	}
	for k, v := range a.Spec.EventMetadata {
		add(k, v)
	}
	add(metaSummary, a.Spec.Summary)
	return out
}

// rateKey identifies an event sent through an Alert to a Provider: the
// same object, severity, reason, message and metadata is the same event.
func rateKey(a *notificationv1beta3.Alert, provider providerKey, e Event) string {
	h := sha256.New()
	obj := e.InvolvedObject
	parts := []string{a.Namespace, a.Name, provider.kind, provider.name.String(), obj.Kind, obj.Namespace, obj.Name, e.Severity, e.Reason, e.Message}
	for _, k := range slices.Sorted(maps.Keys(e.Metadata)) {
		parts = append(parts, k+"="+e.Metadata[k])
	}
	h.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h.Sum(nil))
}

// firstInWindow says whether key was not sent within the rate limit's
// window, and marks it sent now.
func (d *Dispatcher) firstInWindow(key string) bool {
	now := d.opts.Clock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.swept) > d.opts.RateLimit {
		for k, t := range d.sent {
			if now.Sub(t) >= d.opts.RateLimit {
				delete(d.sent, k)
			}
		}
		d.swept = now
	}
	if t, ok := d.sent[key]; ok && now.Sub(t) < d.opts.RateLimit {
		return false
	}
	d.sent[key] = now
	return true
}
