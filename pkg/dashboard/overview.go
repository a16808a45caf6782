package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/manual"
)

// phases are the phases the overview filters by, in the order of a
// release.
var phases = []sluicev1beta1.CanaryPhase{
	sluicev1beta1.CanaryPhaseInitializing, sluicev1beta1.CanaryPhaseInitialized, sluicev1beta1.CanaryPhaseWaiting,
	sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion, sluicev1beta1.CanaryPhasePromoting,
	sluicev1beta1.CanaryPhaseFinalising, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed,
	sluicev1beta1.CanaryPhaseTerminating, sluicev1beta1.CanaryPhaseTerminated,
}

// filter is the overview's query: a namespace and a phase, each empty
// for all.
type filter struct {
	Namespace string
	Phase     sluicev1beta1.CanaryPhase
}

// parseFilter reads the filter from a query, refusing names that cannot
// be a namespace or a phase.
func parseFilter(q url.Values) (filter, error) {
	f := filter{Namespace: strings.TrimSpace(q.Get("namespace")), Phase: sluicev1beta1.CanaryPhase(strings.TrimSpace(q.Get("phase")))}
	if f.Namespace != "" {
		if errs := validation.IsDNS1123Label(f.Namespace); len(errs) > 0 {
			return filter{}, fmt.Errorf("namespace %q is not a namespace name: %s", f.Namespace, strings.Join(errs, "; "))
		}
	}
	if f.Phase != "" && !slices.Contains(phases, f.Phase) {
		names := make([]string, len(phases))
		for i, p := range phases {
			names[i] = string(p)
		}
		return filter{}, fmt.Errorf("unknown phase %q: want one of %s", f.Phase, strings.Join(names, ", "))
	}
	return f, nil
}

// query is the filter as a query string, without the leading "?".
func (f filter) query() string {
	q := url.Values{}
	if f.Namespace != "" {
		q.Set("namespace", f.Namespace)
	}
	if f.Phase != "" {
		q.Set("phase", string(f.Phase))
	}
	return q.Encode()
}

func (f filter) matches(cn *sluicev1beta1.Canary) bool {
	return (f.Namespace == "" || cn.Namespace == f.Namespace) && (f.Phase == "" || cn.Status.Phase == f.Phase)
}

// overviewBody is the overview page.
type overviewBody struct {
	Filter filter
	Phases []sluicev1beta1.CanaryPhase
	Rows   []overviewRow
	// Total counts the Canaries in the filter's namespace, of any phase.
	Total int
}

// overviewRow is one Canary on the overview. It is kept small: the
// overview of a thousand Canaries must stay well under 300 KB.
type overviewRow struct {
	ID        string
	Namespace string
	Name      string
	URL       string
	Phase     string
	// Marker says why the phase does not move: paused, queued or frozen.
	Marker string
	Weight int
	// Bar is the weight as the bar draws it, 0 to 100.
	Bar int
	// Checks is the failed checks against the threshold: "1/5".
	Checks     string
	Since      string
	SinceTitle string
	Image      string
	Revision   string
	// Applier names the object that applied the Canary, whose revision
	// Revision is: "Kustomization flux-system/apps".
	Applier string
}

// rowID is the element id of a Canary's row, which the live stream
// replaces.
func rowID(namespace, name string) string {
	return "c/" + namespace + "/" + name
}

func canaryURL(namespace, name string) string {
	return "/canaries/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}

// newRow builds the row of cn.
func newRow(cn *sluicev1beta1.Canary, lk lookups, now time.Time) overviewRow {
	row := overviewRow{
		ID:        rowID(cn.Namespace, cn.Name),
		Namespace: cn.Namespace,
		Name:      cn.Name,
		URL:       canaryURL(cn.Namespace, cn.Name),
		Phase:     phaseName(cn.Status.Phase),
		Marker:    marker(cn),
		Weight:    cn.Status.CanaryWeight,
		Bar:       bar(cn.Status.CanaryWeight),
		Checks:    checks(cn),
		Image:     lk[targetKey(cn)],
	}
	if t := cn.Status.LastTransitionTime.Time; !t.IsZero() {
		row.Since, row.SinceTitle = ago(t, now), t.UTC().Format(time.RFC3339)
	}
	if a, ok := applierOf(cn); ok {
		row.Applier = a.String()
		row.Revision = lk[a.key()]
	}
	return row
}

// bar is a weight as the weight bar draws it: a percentage, 0 to 100.
func bar(weight int) int {
	return min(max(weight, 0), 100)
}

// phaseName is the phase, or "New" before the operator has set one.
func phaseName(p sluicev1beta1.CanaryPhase) string {
	if p == "" {
		return "New"
	}
	return string(p)
}

// marker says why a Canary holds: a manual pause, or a ReleasePolicy
// that queues or freezes it.
func marker(cn *sluicev1beta1.Canary) string {
	if cn.Status.Paused != nil {
		return "paused"
	}
	if ready := meta.FindStatusCondition(cn.Status.Conditions, sluicev1beta1.ReadyCondition); ready != nil {
		switch ready.Reason {
		case sluicev1beta1.ReasonQueued:
			return "queued"
		case sluicev1beta1.ReasonFrozen:
			return "frozen"
		}
	}
	return ""
}

// checks is the failed checks against the threshold.
func checks(cn *sluicev1beta1.Canary) string {
	if cn.Spec.Analysis == nil {
		return fmt.Sprintf("%d", cn.Status.FailedChecks)
	}
	return fmt.Sprintf("%d/%d", cn.Status.FailedChecks, cn.Spec.Analysis.Threshold)
}

// ago is how long ago t was, in its largest unit: "3m ago".
func ago(t, now time.Time) string {
	return shortDuration(now.Sub(t)) + " ago"
}

// shortDuration writes d in at most two units: "45s", "3m12s", "2h5m",
// "3d4h".
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 48*3600:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	default:
		return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
	}
}

// applier is the Kustomization or HelmRelease that applied an object.
type applier struct {
	Kind      string
	Namespace string
	Name      string
}

func (a applier) String() string { return a.Kind + " " + a.Namespace + "/" + a.Name }

func (a applier) key() string { return a.Kind + "/" + a.Namespace + "/" + a.Name }

// applierLabels are the labels that name what applied an object: Sluice's
// sync core's own, then Flux's, for Canaries that Flux itself applies.
var applierLabels = []struct{ kind, name, namespace string }{
	{"Kustomization", syncv1.AppliedByNameLabel, syncv1.AppliedByNamespaceLabel},
	{"HelmRelease", syncv2.AppliedByNameLabel, syncv2.AppliedByNamespaceLabel},
	{"Kustomization", "kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace"},
	{"HelmRelease", "helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace"},
}

// applierOf names what applied obj, from its labels.
func applierOf(obj client.Object) (applier, bool) {
	labels := obj.GetLabels()
	for _, l := range applierLabels {
		if name, ns := labels[l.name], labels[l.namespace]; name != "" && ns != "" {
			return applier{Kind: l.kind, Namespace: ns, Name: name}, true
		}
	}
	return applier{}, false
}

// targetKey is the lookups key of a Canary's target workload.
func targetKey(cn *sluicev1beta1.Canary) string {
	return cn.Spec.TargetRef.Kind + "/" + cn.Namespace + "/" + cn.Spec.TargetRef.Name
}

// lookups are what the rows show beside the Canaries themselves, by
// "Kind/namespace/name": the image of each target workload and the
// revision of each applier.
type lookups map[string]string

// lookedUp are the kinds a row reads besides its Canary: the targets, for
// their image, and the appliers, for their revision.
var lookedUp = map[string]struct {
	// missing words a failed Get, listMissing a failed list.
	missing, listMissing string
	plural               string
	newObject            func() client.Object
	newList              func() client.ObjectList
	// allNamespaces: appliers live in their own namespaces
	// (flux-system, say), so they are listed in all.
	allNamespaces bool
	value         func(client.Object) string
}{
	"Deployment": {
		missing: "The image is missing", listMissing: "Images are missing", plural: "Deployments",
		newObject: func() client.Object { return &appsv1.Deployment{} },
		newList:   func() client.ObjectList { return &appsv1.DeploymentList{} },
		value:     func(o client.Object) string { return firstImage(&o.(*appsv1.Deployment).Spec.Template) },
	},
	"DaemonSet": {
		missing: "The image is missing", listMissing: "Images are missing", plural: "DaemonSets",
		newObject: func() client.Object { return &appsv1.DaemonSet{} },
		newList:   func() client.ObjectList { return &appsv1.DaemonSetList{} },
		value:     func(o client.Object) string { return firstImage(&o.(*appsv1.DaemonSet).Spec.Template) },
	},
	"Kustomization": {
		missing: "The revision is missing", listMissing: "Revisions are missing", plural: "Kustomizations", allNamespaces: true,
		newObject: func() client.Object { return &syncv1.Kustomization{} },
		newList:   func() client.ObjectList { return &syncv1.KustomizationList{} },
		value:     func(o client.Object) string { return manual.StateOf(o).Revision },
	},
	"HelmRelease": {
		missing: "The revision is missing", listMissing: "Revisions are missing", plural: "HelmReleases", allNamespaces: true,
		newObject: func() client.Object { return &syncv2.HelmRelease{} },
		newList:   func() client.ObjectList { return &syncv2.HelmReleaseList{} },
		value:     func(o client.Object) string { return manual.StateOf(o).Revision },
	},
}

// lookUp reads what the rows of canaries need, with one list per kind
// that any of them needs. A read that fails becomes a notice: the
// Canaries are still worth showing without their images.
func (h *handler) lookUp(ctx context.Context, namespace string, canaries []sluicev1beta1.Canary) (lookups, []string) {
	lk := lookups{}
	var notices []string
	kinds := map[string]bool{}
	for i := range canaries {
		kinds[canaries[i].Spec.TargetRef.Kind] = true
		if a, ok := applierOf(&canaries[i]); ok {
			kinds[a.Kind] = true
		}
	}
	for kind, l := range lookedUp {
		if !kinds[kind] {
			continue
		}
		ns := namespace
		if l.allNamespaces {
			ns = ""
		}
		items, err := listObjects(ctx, h.c, l.newList(), client.InNamespace(ns))
		if err != nil {
			notices = append(notices, l.listMissing+": "+listError(l.plural, ns, err))
		}
		for _, obj := range items {
			lk[kind+"/"+obj.GetNamespace()+"/"+obj.GetName()] = l.value(obj)
		}
	}
	slices.Sort(notices)
	return lk, notices
}

// lookUpOne reads what the row or the page of one Canary needs: its
// target and its applier, one Get each. A read that fails becomes a
// notice.
func (h *handler) lookUpOne(ctx context.Context, cn *sluicev1beta1.Canary) (lookups, []string) {
	lk := lookups{}
	var notices []string
	get := func(kind string, key client.ObjectKey) {
		l, ok := lookedUp[kind]
		if !ok {
			return
		}
		obj := l.newObject()
		if err := h.c.Get(ctx, key, obj); err != nil {
			notices = append(notices, fmt.Sprintf("%s: get %s %s: %v", l.missing, kind, key, err))
			return
		}
		lk[kind+"/"+key.Namespace+"/"+key.Name] = l.value(obj)
	}
	get(cn.Spec.TargetRef.Kind, client.ObjectKey{Namespace: cn.Namespace, Name: cn.Spec.TargetRef.Name})
	if a, ok := applierOf(cn); ok {
		get(a.Kind, client.ObjectKey{Namespace: a.Namespace, Name: a.Name})
	}
	return lk, notices
}

func firstImage(t *corev1.PodTemplateSpec) string {
	if len(t.Spec.Containers) == 0 {
		return ""
	}
	return t.Spec.Containers[0].Image
}

// listError says which list failed where, with the API server's words.
func listError(what, namespace string, err error) string {
	where := "all namespaces"
	if namespace != "" {
		where = "namespace " + namespace
	}
	return fmt.Sprintf("list %s in %s: %v", what, where, err)
}

// overview serves the Canaries of all namespaces, or of the filter's.
func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		h.errorPage(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	var list sluicev1beta1.CanaryList
	if err := h.c.List(ctx, &list, client.InNamespace(f.Namespace)); err != nil {
		h.apiErrorPage(w, r, err, listError("Canaries", f.Namespace, err))
		return
	}
	lk, notices := h.lookUp(ctx, f.Namespace, list.Items)
	body := overviewRows(list.Items, f, lk, h.now())
	live := "/live/overview?" + f.query()
	if !strings.HasSuffix(live, "?") {
		live += "&"
	}
	live += "rv=" + url.QueryEscape(list.ResourceVersion)
	h.writePage(w, r, http.StatusOK, "overview.html", page{Title: "Canaries", Nav: "overview", Live: live, Notices: notices, Body: body})
}

// overviewRows builds the overview of canaries under f, sorted by
// namespace and name.
func overviewRows(canaries []sluicev1beta1.Canary, f filter, lk lookups, now time.Time) overviewBody {
	body := overviewBody{Filter: f, Phases: phases, Total: len(canaries)}
	for i := range canaries {
		if f.matches(&canaries[i]) {
			body.Rows = append(body.Rows, newRow(&canaries[i], lk, now))
		}
	}
	slices.SortFunc(body.Rows, func(a, b overviewRow) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return body
}
