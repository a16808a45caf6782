// Package receiver is the sync core's webhook endpoint. A Git host or a
// registry calls a Receiver's secret path on a push; a call whose
// signature or token checks out sets the reconcile request annotation on
// the Receiver's resources, so their controllers fetch and apply at once
// instead of at their next interval. A forged call gets 401, a malformed
// one 400 and one over the body cap 413; none changes anything. Each
// Receiver type's check is a sender, one file each, listed in senders.
package receiver

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clientevents "k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imagev1 "sluice.dev/sluice/api/image/v1"
	notificationv1 "sluice.dev/sluice/api/notification/v1"
	sourcev1 "sluice.dev/sluice/api/source/v1"
	syncv1 "sluice.dev/sluice/api/sync/v1"
	syncv2 "sluice.dev/sluice/api/sync/v2"
	"sluice.dev/sluice/pkg/sync/celexpr"
)

// webhookPathField indexes Receivers by status.webhookPath.
const webhookPathField = "status.webhookPath"

// maxBody bounds a call's body; a larger one gets 413. Pushes and
// registry events are a few kilobytes, GitHub's push payload lists at
// most 20 commits; Flux's cap is 3 MiB.
const maxBody = 1 << 20

// kinds maps the kinds a Receiver may name to their default group and
// version. The objects are read and patched by their metadata only, so a
// kind needs no Go type here: OCIRepository is known by its group and
// version alone.
func kinds() map[string]schema.GroupVersionKind {
	return map[string]schema.GroupVersionKind{
		"GitRepository":  sourcev1.GroupVersion.WithKind("GitRepository"),
		"HelmRepository": sourcev1.GroupVersion.WithKind("HelmRepository"),
		"HelmChart":      sourcev1.GroupVersion.WithKind("HelmChart"),
		"OCIRepository":  sourcev1.GroupVersion.WithKind("OCIRepository"),
		"Bucket":         sourcev1.GroupVersion.WithKind("Bucket"),
		"Kustomization":  syncv1.GroupVersion.WithKind("Kustomization"),
		"HelmRelease":    syncv2.GroupVersion.WithKind("HelmRelease"),
		// A registry's webhook (or CI after a push) makes the scan, and so
		// the automation's commit, follow a new tag at once.
		"ImageRepository":       imagev1.GroupVersion.WithKind("ImageRepository"),
		"ImageUpdateAutomation": imagev1.GroupVersion.WithKind("ImageUpdateAutomation"),
		// A policy chooses again from its repository's tags at once.
		"ImagePolicy": imagev1.GroupVersion.WithKind("ImagePolicy"),
	}
}

// Handler serves the webhook paths of every Receiver.
type Handler struct {
	// Client reads Receivers (indexed by IndexWebhookPath), their Secrets
	// and the resources, and patches the resources' annotations.
	Client client.Client
	Log    logr.Logger
	// Events records a Warning on the Receiver when a verified call
	// fails for a reason its owner must see; nil records none.
	Events clientevents.EventRecorder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// GoogleCertsURL is where gcr Receivers fetch the keys of Google's ID
	// tokens; empty means Google's own, the package's GoogleCertsURL.
	GoogleCertsURL string
	// HTTPClient fetches Google's keys and, for generic-oidc, the
	// issuers' discovery documents and keys; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Exprs holds the compiled CEL expressions of the specs (the resource
	// filters and the OIDC providers' variables and validations), shared
	// with the Reconciler, which compiles the same ones; nil means one of
	// the Handler's own.
	Exprs *celexpr.Cache

	once   sync.Once
	google *googleKeys
	oidc   *oidcIssuers
	exprs  *celexpr.Cache
}

// init makes the key caches and picks the expression cache, once.
func (h *Handler) init() {
	h.once.Do(func() {
		url, c := h.GoogleCertsURL, h.HTTPClient
		if url == "" {
			url = GoogleCertsURL
		}
		if c == nil {
			c = http.DefaultClient
		}
		h.google = newGoogleKeys(url, c)
		h.oidc = newOIDCIssuers(c)
		h.exprs = h.Exprs
		if h.exprs == nil {
			h.exprs = &celexpr.Cache{}
		}
	})
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// ServeHTTP verifies a call and, when it triggers, requests a reconcile of
// the Receiver's resources.
func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "only POST is served", http.StatusMethodNotAllowed)
		return
	}
	h.init()
	ctx := req.Context()
	rcv, secret, err := h.receiver(ctx, req.URL.Path)
	if err != nil {
		h.Log.Info("webhook call refused", "path", req.URL.Path, "reason", err.Error())
		http.Error(w, "no receiver at this path", http.StatusNotFound)
		return
	}
	log := h.Log.WithValues("receiver", client.ObjectKeyFromObject(rcv), "type", rcv.Spec.Type)
	if rcv.Spec.Suspend {
		http.Error(w, "receiver is suspended", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			log.Info("webhook call refused", "reason", "body over the cap", "limit", tooLarge.Limit)
			http.Error(w, fmt.Sprintf("body is larger than %d bytes", tooLarge.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	// The Receiver is not Ready until its spec is fixed, as in Flux. The
	// caller, not yet verified (and a generic-oidc path is no secret), is
	// not told the spec; its status and Events are.
	// Compiled once here, the expressions go on to the check and the
	// filter.
	spec, err := compileSpec(h.exprs, rcv)
	if err != nil {
		log.Info("webhook call refused", "reason", err.Error())
		http.Error(w, "receiver is not ready: an expression of its spec does not compile", http.StatusServiceUnavailable)
		return
	}
	call := &Call{Header: req.Header, Body: body, Secret: secret, Events: rcv.Spec.Events, OIDCProviders: rcv.Spec.OIDCProviders, oidc: spec.oidc, Now: h.now()}
	verdict, err := verify(ctx, deps{google: h.google, oidc: h.oidc}, rcv.Spec.Type, call)
	switch {
	case errors.Is(err, ErrUnauthorized):
		log.Info("webhook call refused", "reason", err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	case errors.Is(err, errUnavailable):
		log.Error(err, "webhook call refused")
		h.warn(rcv, notificationv1.ReasonOIDCIssuerUnavailable, "spec.oidcProviders: %v", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		log.Info("webhook call refused", "reason", err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case !verdict.Trigger:
		_, _ = fmt.Fprintln(w, verdict.Reason)
		return
	}
	f, err := newResourceFilter(spec, rcv.Spec.Type, req.Header, body, verdict)
	if err != nil {
		log.Info("webhook call refused", "reason", err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	done, err := h.request(ctx, rcv, f)
	if err != nil {
		log.Error(err, "request reconcile", "requested", done)
		h.warn(rcv, notificationv1.ReasonReconcileRequestFailed, "spec.resources: %v", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	log.Info("reconcile requested", "resources", done)
	_, _ = fmt.Fprintf(w, "reconcile requested: %s\n", strings.Join(done, ", "))
}

// warn records a Warning Event on the Receiver, where kubectl shows it.
func (h *Handler) warn(rcv *notificationv1.Receiver, reason, note string, args ...any) {
	if h.Events != nil {
		h.Events.Eventf(rcv, nil, corev1.EventTypeWarning, reason, "Call", note, args...)
	}
}

// receiver finds the Receiver whose path was called, and its Secret's
// data (nil for generic-oidc, which has none). The path is checked against
// the token too, so a status not yet updated after a token change does
// not let the old path in.
func (h *Handler) receiver(ctx context.Context, path string) (*notificationv1.Receiver, map[string][]byte, error) {
	var list notificationv1.ReceiverList
	if err := h.Client.List(ctx, &list, client.MatchingFields{webhookPathField: path}); err != nil {
		return nil, nil, fmt.Errorf("list Receivers: %w", err)
	}
	if len(list.Items) != 1 {
		return nil, nil, fmt.Errorf("%d receivers have this path", len(list.Items))
	}
	rcv := &list.Items[0]
	secret, err := SecretData(ctx, h.Client, rcv)
	if err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare([]byte(WebhookPath(string(secret["token"]), rcv.Name, rcv.Namespace)), []byte(path)) != 1 {
		return nil, nil, errors.New("the path is not the current token's")
	}
	return rcv, secret, nil
}

// SecretData reads the Receiver's Secret and checks it holds the "token"
// key and the keys its type needs besides. A generic-oidc Receiver has no
// Secret: its data is nil, and its path is made with an empty token, as
// in Flux.
func SecretData(ctx context.Context, c client.Reader, rcv *notificationv1.Receiver) (map[string][]byte, error) {
	if rcv.Spec.SecretRef == nil {
		if rcv.Spec.Type != notificationv1.GenericOIDCReceiver {
			return nil, fmt.Errorf("spec.secretRef is required for a %s Receiver", rcv.Spec.Type)
		}
		return nil, nil
	}
	secret := &corev1.Secret{}
	if err := c.Get(ctx, types.NamespacedName{Namespace: rcv.Namespace, Name: rcv.Spec.SecretRef.Name}, secret); err != nil {
		return nil, fmt.Errorf("spec.secretRef: Secret %s: %w", rcv.Spec.SecretRef.Name, err)
	}
	for _, key := range secretKeys(rcv.Spec.Type) {
		if len(secret.Data[key]) == 0 {
			return nil, fmt.Errorf("spec.secretRef: Secret %s has no %s key, which a %s Receiver needs", rcv.Spec.SecretRef.Name, key, rcv.Spec.Type)
		}
	}
	return secret.Data, nil
}

// request sets the reconcile request annotation on each resource that f
// (nil for none) keeps, and returns those it set it on.
func (h *Handler) request(ctx context.Context, rcv *notificationv1.Receiver, f *resourceFilter) ([]string, error) {
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, sourcev1.ReconcileRequestAnnotation, h.now().Format(time.RFC3339Nano)))
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
			if f.applies(i) {
				keep, err := h.filtered(ctx, f, i, ref, obj)
				if err != nil {
					errs = append(errs, fmt.Errorf("spec.resources[%d]: %s: %w", i, id, err))
					continue
				}
				if !keep {
					h.Log.V(1).Info("resource not annotated: spec.resourceFilter or the resource's filter is false", "resource", id)
					continue
				}
			}
			if err := h.Client.Patch(ctx, obj, patch); err != nil {
				errs = append(errs, fmt.Errorf("spec.resources[%d]: annotate %s: %w", i, id, err))
				continue
			}
			done = append(done, id)
		}
	}
	return done, errors.Join(errs...)
}

// filtered evaluates f on obj, matched by spec.resources[i], which a
// filter applies to. An object named in the reference is read first, so
// that the filter sees its labels and annotations; one matched by labels
// was listed with them.
func (h *Handler) filtered(ctx context.Context, f *resourceFilter, i int, ref notificationv1.CrossNamespaceObjectReference, obj client.Object) (bool, error) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if ref.Name != "*" {
		if err := h.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, fmt.Errorf("read for the resource filters: %w", err)
		}
	}
	// res has the apiVersion and kind, which a read may leave out.
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return f.keep(ctx, i, obj)
}

// resolve turns a reference into the objects it names, as metadata only:
// the patch needs no more, and a kind needs no Go type.
func (h *Handler) resolve(ctx context.Context, rcv *notificationv1.Receiver, ref notificationv1.CrossNamespaceObjectReference) ([]client.Object, error) {
	gvk, ok := kinds()[ref.Kind]
	if !ok {
		return nil, fmt.Errorf("kind %q is not supported", ref.Kind)
	}
	if ref.APIVersion != "" {
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("apiVersion: %w", err)
		}
		// A manifest migrated from Flux by changing only its own group
		// still names Flux's groups here: those mean Sluice's kinds.
		gv.Group = syncv1.SluiceGroup(gv.Group)
		if gv.Group != gvk.Group {
			gvk = gv.WithKind(ref.Kind)
		}
	}
	ns := ref.Namespace
	if ns == "" {
		ns = rcv.Namespace
	}
	if ref.Name != "*" {
		obj := &metav1.PartialObjectMetadata{}
		obj.SetGroupVersionKind(gvk)
		obj.SetNamespace(ns)
		obj.SetName(ref.Name)
		return []client.Object{obj}, nil
	}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := h.Client.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(ref.MatchLabels)}); err != nil {
		return nil, fmt.Errorf("list %s in %s: %w", gvk.Kind, ns, err)
	}
	out := make([]client.Object, 0, len(list.Items))
	for i := range list.Items {
		list.Items[i].SetGroupVersionKind(gvk)
		out = append(out, &list.Items[i])
	}
	return out, nil
}
