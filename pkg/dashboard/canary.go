package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// maxEvents is how many of a Canary's Events its page shows, newest
// first.
const maxEvents = 20

// canaryBody is the page of one Canary: the actions, which stay put, and
// the detail, which the live stream replaces.
type canaryBody struct {
	Namespace string
	Name      string
	Actions   []actionButton
	Detail    canaryDetail
}

// canaryDetail is the part of a Canary's page that changes with it.
type canaryDetail struct {
	Namespace string
	Name      string
	// Deleted is set once the Canary is gone.
	Deleted  bool
	Phase    string
	Marker   string
	Weight   int
	Bar      int
	Checks   string
	Target   string
	Image    string
	Applier  string
	Revision string
	// Since is the last transition.
	Since, SinceTitle string
	LastRequest       *requestView
	Releases          []releaseView
	Steps             []stepView
	WeightChart       chart
	Metrics           []metricView
	Events            []eventView
	Conditions        []conditionView
	// Notices are the reads that failed, such as a denied list of
	// Events.
	Notices []string
}

type requestView struct {
	Action, By, Outcome, Message string
}

type releaseView struct {
	Revision   string
	Outcome    string
	Start      string
	StartTitle string
	Duration   string
	Message    string
}

type stepView struct {
	Index     int
	Time      string
	TimeTitle string
	Phase     string
	Weight    int
	Outcome   string
	Message   string
	Metrics   []sluicev1beta1.StepMetric
	Webhooks  []sluicev1beta1.StepWebhook
}

type metricView struct {
	Name string
	// Range is the values that pass: "≥ 99".
	Range  string
	Chart  chart
	Values []metricValue
}

type metricValue struct {
	Step      int
	Time      string
	TimeTitle string
	Value     string
	Outcome   string
}

type eventView struct {
	Type, Reason, Message string
	Count                 int32
	Age, Title            string
}

type conditionView struct {
	Type, Status, Reason, Message string
	Since, SinceTitle             string
}

// actionButton is a button that posts an action.
type actionButton struct {
	Label string
	URL   string
	Title string
	// Confirm, when set, is the question of the dialog that comes first.
	Confirm string
	Danger  bool
}

// canaryActions are the manual requests the CLI sends, as buttons.
func canaryActions(namespace, name string) []actionButton {
	base := canaryURL(namespace, name) + "/"
	who := namespace + "/" + name
	return []actionButton{
		{Label: "Promote", URL: base + "promote", Title: "Approve the gate the rollout waits at; the step's analysis still runs"},
		{Label: "Promote fully", URL: base + "promote-full", Title: "Promote now, skipping the remaining steps and their checks",
			Confirm: "Promote " + who + " now, skipping the remaining steps and their checks?", Danger: true},
		{Label: "Abort", URL: base + "abort", Title: "Roll the release back now",
			Confirm: "Abort the release of " + who + "? Traffic goes back to the primary.", Danger: true},
		{Label: "Retry", URL: base + "retry", Title: "Analyse a rolled-back revision again"},
		{Label: "Pause", URL: base + "pause", Title: "Hold the Canary where it is"},
		{Label: "Resume", URL: base + "resume", Title: "Let a paused Canary go on"},
	}
}

// canary serves one Canary's page.
func (h *handler) canary(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	cn := &sluicev1beta1.Canary{}
	if err := h.c.Get(r.Context(), client.ObjectKey{Namespace: ns, Name: name}, cn); err != nil {
		if apierrors.IsNotFound(err) {
			h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("There is no Canary %s in namespace %s.", name, ns))
			return
		}
		h.apiErrorPage(w, r, err, fmt.Sprintf("get Canary %s/%s: %v", ns, name, err))
		return
	}
	body := canaryBody{Namespace: ns, Name: name, Actions: canaryActions(ns, name), Detail: h.canaryDetail(r.Context(), cn)}
	live := "/live/canaries/" + url.PathEscape(ns) + "/" + url.PathEscape(name) + "?rv=" + url.QueryEscape(cn.ResourceVersion)
	h.writePage(w, r, http.StatusOK, "canary.html", page{Title: ns + "/" + name, Nav: "overview", Live: live, Body: body})
}

// canaryDetail reads what the page shows besides the Canary (its
// target's image, its applier's revision, its Events) and builds the
// detail. A read that fails becomes a notice.
func (h *handler) canaryDetail(ctx context.Context, cn *sluicev1beta1.Canary) canaryDetail {
	lk, notices := h.lookUpOne(ctx, cn)
	var events corev1.EventList
	err := h.c.List(ctx, &events, client.InNamespace(cn.Namespace),
		client.MatchingFields{"involvedObject.kind": "Canary", "involvedObject.name": cn.Name})
	if err != nil {
		notices = append(notices, "Events are missing: "+listError("Events", cn.Namespace, err))
	}
	d := newCanaryDetail(cn, events.Items, h.now())
	d.Image, d.Notices = lk[targetKey(cn)], notices
	if a, ok := applierOf(cn); ok {
		d.Revision = lk[a.key()]
	}
	return d
}

// newCanaryDetail builds the detail of cn with its events, as of now.
func newCanaryDetail(cn *sluicev1beta1.Canary, events []corev1.Event, now time.Time) canaryDetail {
	s := cn.Status
	d := canaryDetail{
		Namespace: cn.Namespace,
		Name:      cn.Name,
		Phase:     phaseName(s.Phase),
		Marker:    marker(cn),
		Weight:    s.CanaryWeight,
		Bar:       bar(s.CanaryWeight),
		Checks:    checks(cn),
		Target:    cn.Spec.TargetRef.Kind + "/" + cn.Spec.TargetRef.Name,
	}
	if a, ok := applierOf(cn); ok {
		d.Applier = a.String()
	}
	if t := s.LastTransitionTime.Time; !t.IsZero() {
		d.Since, d.SinceTitle = ago(t, now), t.UTC().Format(time.RFC3339)
	}
	if lr := s.LastRequest; lr != nil {
		d.LastRequest = &requestView{Action: string(lr.Action), By: lr.By, Outcome: string(lr.Outcome), Message: lr.Message}
	}
	for _, rel := range s.Releases {
		v := releaseView{Revision: rel.Revision, Outcome: string(rel.Outcome), Message: rel.Message}
		if start := rel.StartTime.Time; !start.IsZero() {
			v.Start, v.StartTitle = ago(start, now), start.UTC().Format(time.RFC3339)
			end := now
			if rel.EndTime != nil {
				end = rel.EndTime.Time
			}
			v.Duration = shortDuration(end.Sub(start))
		}
		d.Releases = append(d.Releases, v)
	}

	times := make([]time.Time, len(s.Steps))
	weights := make([]sample, len(s.Steps))
	for i, st := range s.Steps {
		times[i] = st.Time.Time
		weights[i] = sample{Time: st.Time.Time, Value: float64(st.Weight), Raw: strconv.Itoa(st.Weight), Step: i, Outcome: string(st.Outcome)}
		d.Steps = append(d.Steps, stepView{
			Index: i, Time: st.Time.UTC().Format(time.TimeOnly), TimeTitle: st.Time.UTC().Format(time.RFC3339),
			Phase: string(st.Phase), Weight: st.Weight, Outcome: string(st.Outcome), Message: st.Message,
			Metrics: st.Metrics, Webhooks: st.Webhooks,
		})
	}
	axis := newTimeAxis(times)
	d.WeightChart = weightChart(weights, axis)
	d.Metrics = metricViews(cn, axis)

	d.Events = eventViews(events, now)
	for _, c := range s.Conditions {
		v := conditionView{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message}
		if t := c.LastTransitionTime.Time; !t.IsZero() {
			v.Since, v.SinceTitle = ago(t, now), t.UTC().Format(time.RFC3339)
		}
		d.Conditions = append(d.Conditions, v)
	}
	return d
}

// metricViews are a chart and a table per metric: the metrics of the
// analysis in their order, then any that only the steps name.
func metricViews(cn *sluicev1beta1.Canary, axis timeAxis) []metricView {
	type threshold struct{ min, max *float64 }
	var names []string
	thresholds := map[string]threshold{}
	if a := cn.Spec.Analysis; a != nil {
		for _, m := range a.Metrics {
			names = append(names, m.Name)
			t := threshold{}
			switch {
			case m.ThresholdRange != nil:
				t = threshold{m.ThresholdRange.Min, m.ThresholdRange.Max}
			case m.Threshold != nil: //nolint:staticcheck // Flagger's deprecated threshold still decides, as a maximum
				t = threshold{max: m.Threshold} //nolint:staticcheck // as above
			}
			thresholds[m.Name] = t
		}
	}
	for _, st := range cn.Status.Steps {
		for _, m := range st.Metrics {
			if !slices.Contains(names, m.Name) {
				names = append(names, m.Name)
			}
		}
	}
	views := make([]metricView, 0, len(names))
	for _, name := range names {
		t := thresholds[name]
		v := metricView{Name: name, Range: thresholdText(t.min, t.max)}
		var samples []sample
		for i, st := range cn.Status.Steps {
			for _, m := range st.Metrics {
				if m.Name != name {
					continue
				}
				v.Values = append(v.Values, metricValue{
					Step: i, Time: st.Time.UTC().Format(time.TimeOnly), TimeTitle: st.Time.UTC().Format(time.RFC3339),
					Value: m.Value, Outcome: string(m.Outcome),
				})
				// A value that is not a number (none, under noData) is
				// in the table but not on the chart.
				if f, err := strconv.ParseFloat(m.Value, 64); err == nil {
					samples = append(samples, sample{Time: st.Time.Time, Value: f, Raw: m.Value, Step: i, Outcome: string(m.Outcome)})
				}
			}
		}
		v.Chart = metricChart(samples, axis, t.min, t.max)
		views = append(views, v)
	}
	return views
}

// eventViews are the newest maxEvents events, newest first.
func eventViews(events []corev1.Event, now time.Time) []eventView {
	sorted := slices.Clone(events)
	slices.SortStableFunc(sorted, func(a, b corev1.Event) int { return eventTime(b).Compare(eventTime(a)) })
	if len(sorted) > maxEvents {
		sorted = sorted[:maxEvents]
	}
	views := make([]eventView, 0, len(sorted))
	for _, e := range sorted {
		v := eventView{Type: e.Type, Reason: e.Reason, Message: strings.TrimSpace(e.Message), Count: e.Count}
		if e.Series != nil {
			v.Count = e.Series.Count
		}
		if t := eventTime(e); !t.IsZero() {
			v.Age, v.Title = ago(t, now), t.UTC().Format(time.RFC3339)
		}
		views = append(views, v)
	}
	return views
}

// eventTime is when an event last happened, from whichever of its times
// the recorder set: events.k8s.io writes eventTime and series, core
// events lastTimestamp.
func eventTime(e corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
