package dashboard

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/manual"
)

// syncKind is a kind of the sync core that the sync page lists and acts
// on.
type syncKind struct {
	// Path names it in the action URLs.
	Path  string
	Kind  string
	Title string
	// Applies says that its objects apply Canaries, which its rows link.
	Applies   bool
	newObject func() client.Object
	newList   func() client.ObjectList
}

// syncKinds are the kinds of the sync page, in the order of the chain
// from Git to the cluster.
var syncKinds = []syncKind{
	{
		Path: "gitrepository", Kind: "GitRepository", Title: "GitRepositories",
		newObject: func() client.Object { return &sourcev1.GitRepository{} },
		newList:   func() client.ObjectList { return &sourcev1.GitRepositoryList{} },
	},
	{
		Path: "kustomization", Kind: "Kustomization", Title: "Kustomizations", Applies: true,
		newObject: func() client.Object { return &syncv1.Kustomization{} },
		newList:   func() client.ObjectList { return &syncv1.KustomizationList{} },
	},
	{
		Path: "helmrelease", Kind: "HelmRelease", Title: "HelmReleases", Applies: true,
		newObject: func() client.Object { return &syncv2.HelmRelease{} },
		newList:   func() client.ObjectList { return &syncv2.HelmReleaseList{} },
	},
}

func syncKindByPath(path string) (syncKind, bool) {
	for _, k := range syncKinds {
		if k.Path == path {
			return k, true
		}
	}
	return syncKind{}, false
}

// syncBody is the sync page's section, which the live stream replaces.
type syncBody struct {
	Sections []syncSection
	Notices  []string
}

type syncSection struct {
	Kind    string
	Title   string
	Applies bool
	Rows    []syncRow
	// Error is why the kind could not be listed.
	Error string
}

type syncRow struct {
	ID        string
	Namespace string
	Name      string
	// Source is what a Kustomization or HelmRelease reads.
	Source    string
	Revision  string
	Ready     string
	Reason    string
	Message   string
	Suspended bool
	Canaries  []canaryLink
	Actions   []actionButton
}

type canaryLink struct {
	Name string
	URL  string
}

// readSync lists the sync kinds and the Canaries they apply. It fails
// only when the API server refuses every list, with the first refusal.
func (h *handler) readSync(ctx context.Context) (syncBody, error) {
	var body syncBody
	carried := map[string][]canaryLink{}
	var canaries sluicev1beta1.CanaryList
	if err := h.c.List(ctx, &canaries); err != nil {
		body.Notices = append(body.Notices, "Canaries are missing: "+listError("Canaries", "", err))
	}
	for i := range canaries.Items {
		cn := &canaries.Items[i]
		if a, ok := applierOf(cn); ok {
			carried[a.key()] = append(carried[a.key()], canaryLink{Name: cn.Namespace + "/" + cn.Name, URL: canaryURL(cn.Namespace, cn.Name)})
		}
	}
	var firstErr error
	listed := 0
	for _, k := range syncKinds {
		list := k.newList()
		section := syncSection{Kind: k.Kind, Title: k.Title, Applies: k.Applies}
		items, err := listObjects(ctx, h.c, list)
		if err != nil {
			section.Error = listError(k.Title, "", err)
			if firstErr == nil {
				firstErr = err
			}
		} else {
			listed++
			for _, obj := range items {
				section.Rows = append(section.Rows, newSyncRow(k, obj, carried[applier{k.Kind, obj.GetNamespace(), obj.GetName()}.key()]))
			}
		}
		body.Sections = append(body.Sections, section)
	}
	if listed == 0 && firstErr != nil {
		return body, firstErr
	}
	return body, nil
}

func newSyncRow(k syncKind, obj client.Object, canaries []canaryLink) syncRow {
	s := manual.StateOf(obj)
	row := syncRow{
		ID:        "s/" + k.Path + "/" + obj.GetNamespace() + "/" + obj.GetName(),
		Namespace: obj.GetNamespace(),
		Name:      obj.GetName(),
		Revision:  s.Revision,
		Ready:     string(metav1.ConditionUnknown),
		Suspended: s.Suspended,
		Canaries:  canaries,
	}
	if ready := meta.FindStatusCondition(s.Conditions, "Ready"); ready != nil {
		row.Ready, row.Reason, row.Message = string(ready.Status), ready.Reason, ready.Message
	}
	switch o := obj.(type) {
	case *syncv1.Kustomization:
		row.Source = o.Spec.SourceRef.Kind + "/" + namespaceOr(o.Spec.SourceRef.Namespace, o.Namespace) + "/" + o.Spec.SourceRef.Name
	case *syncv2.HelmRelease:
		if o.Spec.Chart != nil {
			ref := o.Spec.Chart.Spec.SourceRef
			row.Source = ref.Kind + "/" + namespaceOr(ref.Namespace, o.Namespace) + "/" + ref.Name + " " + o.Spec.Chart.Spec.Chart
		} else if o.Spec.ChartRef != nil {
			row.Source = o.Spec.ChartRef.Kind + "/" + namespaceOr(o.Spec.ChartRef.Namespace, o.Namespace) + "/" + o.Spec.ChartRef.Name
		}
	}
	slices.SortFunc(row.Canaries, func(a, b canaryLink) int { return strings.Compare(a.Name, b.Name) })
	base := "/sync/" + k.Path + "/" + url.PathEscape(obj.GetNamespace()) + "/" + url.PathEscape(obj.GetName()) + "/"
	who := k.Kind + " " + obj.GetNamespace() + "/" + obj.GetName()
	row.Actions = []actionButton{{Label: "Reconcile", URL: base + "reconcile", Title: "Reconcile " + who + " now and wait for it"}}
	if s.Suspended {
		row.Actions = append(row.Actions, actionButton{Label: "Resume", URL: base + "resume", Title: "Let the operator reconcile " + who + " again"})
	} else {
		row.Actions = append(row.Actions, actionButton{Label: "Suspend", URL: base + "suspend", Title: "Stop the operator from reconciling " + who})
	}
	return row
}

func namespaceOr(ns, def string) string {
	if ns == "" {
		return def
	}
	return ns
}

// sync serves the sync page.
func (h *handler) sync(w http.ResponseWriter, r *http.Request) {
	body, err := h.readSync(r.Context())
	if err != nil {
		h.apiErrorPage(w, r, err, listError("the sync objects", "", err))
		return
	}
	h.writePage(w, r, http.StatusOK, "sync.html", page{Title: "Sync", Nav: "sync", Live: "/live/sync", Body: body})
}

// listObjects lists list with opts and returns its items.
func listObjects(ctx context.Context, c client.Reader, list client.ObjectList, opts ...client.ListOption) ([]client.Object, error) {
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	objs := make([]client.Object, 0, len(items))
	for _, item := range items {
		if obj, ok := item.(client.Object); ok {
			objs = append(objs, obj)
		}
	}
	return objs, nil
}
