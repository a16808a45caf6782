// Package receiver is the sync core's webhook endpoint. A Git host calls a
// Receiver's secret path on a push; a call whose signature or token checks
// out sets the reconcile request annotation on the Receiver's resources,
// so their controllers fetch and apply at once instead of at their next
// interval. A forged call gets 401 and changes nothing.
package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imagev1 "sluice.dev/sluice/api/image/v1"
	notificationv1 "sluice.dev/sluice/api/notification/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
)

// webhookPathField indexes Receivers by status.webhookPath.
const webhookPathField = "status.webhookPath"

// maxBody bounds a call's body: GitHub's payloads stop at 25 MB.
const maxBody = 25 << 20

// kinds maps the kinds a Receiver may name to their default version.
var kinds = map[string]schema.GroupVersionKind{
	"GitRepository": sourcev1.GroupVersion.WithKind("GitRepository"),
	"Kustomization": syncv1.GroupVersion.WithKind("Kustomization"),
	// A registry's webhook (or CI after a push) makes the scan, and so
	// the automation's commit, follow a new tag at once.
	"ImageRepository": imagev1.GroupVersion.WithKind("ImageRepository"),
}

// Handler serves the webhook paths of every Receiver.
type Handler struct {
	// Client reads Receivers (indexed by IndexWebhookPath), their Secrets
	// and the resources, and patches the resources' annotations.
	Client client.Client
	Log    logr.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ServeHTTP verifies a call and, when it triggers, requests a reconcile of
// the Receiver's resources.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "only POST is served", http.StatusMethodNotAllowed)
		return
	}
	ctx := req.Context()
	rcv, token, err := h.receiver(ctx, req.URL.Path)
	if err != nil {
		h.Log.Info("webhook call refused", "path", req.URL.Path, "reason", err.Error())
		http.Error(w, "no receiver at this path", http.StatusNotFound)
		return
	}
	log := h.Log.WithValues("receiver", client.ObjectKeyFromObject(rcv))
	if rcv.Spec.Suspend {
		http.Error(w, "receiver is suspended", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	verdict, err := Verify(rcv.Spec.Type, token, rcv.Spec.Events, req.Header, body)
	switch {
	case errors.Is(err, ErrUnauthorized):
		log.Info("webhook call refused", "reason", err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	case err != nil:
		log.Info("webhook call refused", "reason", err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case !verdict.Trigger:
		_, _ = fmt.Fprintln(w, verdict.Reason)
		return
	}
	done, err := h.request(ctx, rcv)
	if err != nil {
		log.Error(err, "request reconcile", "requested", done)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	log.Info("reconcile requested", "resources", done)
	_, _ = fmt.Fprintf(w, "reconcile requested: %s\n", strings.Join(done, ", "))
}

// receiver finds the Receiver whose path was called, and its token. The
// path is checked against the token too, so a status not yet updated
// after a token change does not let the old path in.
func (h *Handler) receiver(ctx context.Context, path string) (*notificationv1.Receiver, []byte, error) {
	var list notificationv1.ReceiverList
	if err := h.Client.List(ctx, &list, client.MatchingFields{webhookPathField: path}); err != nil {
		return nil, nil, fmt.Errorf("list Receivers: %w", err)
	}
	if len(list.Items) != 1 {
		return nil, nil, fmt.Errorf("%d receivers have this path", len(list.Items))
	}
	rcv := &list.Items[0]
	token, err := Token(ctx, h.Client, rcv)
	if err != nil {
		return nil, nil, err
	}
	if WebhookPath(string(token), rcv.Name, rcv.Namespace) != path {
		return nil, nil, errors.New("the path is not the current token's")
	}
	return rcv, token, nil
}

// Token reads the "token" key of the Receiver's Secret.
func Token(ctx context.Context, c client.Reader, rcv *notificationv1.Receiver) ([]byte, error) {
	secret := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: rcv.Namespace, Name: rcv.Spec.SecretRef.Name}, secret); err != nil {
		return nil, fmt.Errorf("spec.secretRef: Secret %s: %w", rcv.Spec.SecretRef.Name, err)
	}
	token := secret.Data["token"]
	if len(token) == 0 {
		return nil, fmt.Errorf("spec.secretRef: Secret %s has no token key", rcv.Spec.SecretRef.Name)
	}
	return token, nil
}

// request sets the reconcile request annotation on each resource and
// returns those it set it on.
func (h *Handler) request(ctx context.Context, rcv *notificationv1.Receiver) ([]string, error) {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, sourcev1.ReconcileRequestAnnotation, now().Format(time.RFC3339Nano)))
	// One missing resource does not hold the others back.
	var done []string
	var errs []error
	for i, ref := range rcv.Spec.Resources {
		objs, err := h.resolve(ctx, rcv, ref)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.resources[%d]: %w", i, err))
			continue
		}
		for _, obj := range objs {
			id := ref.Kind + " " + client.ObjectKeyFromObject(obj).String()
			if err := h.Client.Patch(ctx, obj, patch); err != nil {
				errs = append(errs, fmt.Errorf("spec.resources[%d]: annotate %s: %w", i, id, err))
				continue
			}
			done = append(done, id)
		}
	}
	return done, errors.Join(errs...)
}

// resolve turns a reference into the objects it names.
func (h *Handler) resolve(ctx context.Context, rcv *notificationv1.Receiver, ref notificationv1.CrossNamespaceObjectReference) ([]client.Object, error) {
	gvk, ok := kinds[ref.Kind]
	if !ok {
		return nil, fmt.Errorf("kind %q is not supported", ref.Kind)
	}
	if ref.APIVersion != "" {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("apiVersion: %w", err)
		}
		gvk = gv.WithKind(ref.Kind)
	}
	ns := ref.Namespace
	if ns == "" {
		ns = rcv.Namespace
	}
	scheme := h.Client.Scheme()
	if ref.Name != "*" {
		obj, err := scheme.New(gvk)
		if err != nil {
			return nil, fmt.Errorf("kind %s: %w", gvk, err)
		}
		o := obj.(client.Object)
		o.SetNamespace(ns)
		o.SetName(ref.Name)
		return []client.Object{o}, nil
	}
	listObj, err := scheme.New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err != nil {
		return nil, fmt.Errorf("kind %s: %w", gvk, err)
	}
	list := listObj.(client.ObjectList)
	if err := h.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(ref.MatchLabels)}); err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", gvk.Kind, ns, err)
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(items))
	for _, item := range items {
		out = append(out, item.(client.Object))
	}
	return out, nil
}
