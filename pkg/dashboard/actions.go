package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/manual"
)

// canaryRequests are the actions of a Canary's page, by their URL name.
var canaryRequests = map[string]sluicev1beta1.Request{
	"promote":      {Action: sluicev1beta1.RequestPromote},
	"promote-full": {Action: sluicev1beta1.RequestPromote, Full: true},
	"abort":        {Action: sluicev1beta1.RequestAbort},
	"retry":        {Action: sluicev1beta1.RequestRetry},
	"pause":        {Action: sluicev1beta1.RequestPause},
	"resume":       {Action: sluicev1beta1.RequestResume},
}

// canaryAction sends a manual request to a Canary, as the CLI does, and
// answers with the operator's answer once it comes.
func (h *handler) canaryAction(w http.ResponseWriter, r *http.Request) {
	ns, name, action := r.PathValue("namespace"), r.PathValue("name"), r.PathValue("action")
	req, ok := canaryRequests[action]
	if !ok {
		writeJSON(w, http.StatusNotFound, actionResult{Message: fmt.Sprintf("unknown action %q: want promote, promote-full, abort, retry, pause or resume", action)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ActionTimeout)
	defer cancel()
	key := client.ObjectKey{Namespace: ns, Name: name}
	cn := &sluicev1beta1.Canary{}
	if err := h.c.Get(ctx, key, cn); err != nil {
		writeJSON(w, apiStatus(err), actionResult{Message: fmt.Sprintf("get Canary %s: %v", key, err)})
		return
	}
	// The request names who asked; a server that does not answer
	// SelfSubjectReview leaves it to the operator's default.
	if by, err := h.manual.WhoAmI(ctx); err == nil {
		req.By = by
	}
	sent, err := h.manual.SendCanary(ctx, cn, req)
	if err != nil {
		writeJSON(w, apiStatus(err), actionResult{Message: err.Error()})
		return
	}
	answer, err := h.manual.AwaitCanary(ctx, key, sent.ID, nil)
	if err != nil {
		writeJSON(w, http.StatusGatewayTimeout, actionResult{Message: h.waitError(r, err, fmt.Sprintf("the operator to answer the %s request on Canary %s (is it running?)", manual.Describe(sent), key))})
		return
	}
	if answer.Outcome == sluicev1beta1.RequestRefused {
		writeJSON(w, http.StatusConflict, actionResult{Message: fmt.Sprintf("Canary %s refused the %s request: %s", key, manual.Describe(sent), answer.Message)})
		return
	}
	writeJSON(w, http.StatusOK, actionResult{OK: true, Message: fmt.Sprintf("Canary %s: %s", key, answer.Message)})
}

// syncAction reconciles, suspends or resumes a sync object, as the CLI
// does: resume reconciles too, and a reconcile waits for the operator.
func (h *handler) syncAction(w http.ResponseWriter, r *http.Request) {
	k, ok := syncKindByPath(r.PathValue("kind"))
	if !ok {
		writeJSON(w, http.StatusNotFound, actionResult{Message: fmt.Sprintf("unknown kind %q: want gitrepository, kustomization or helmrelease", r.PathValue("kind"))})
		return
	}
	action := r.PathValue("action")
	if action != "reconcile" && action != "suspend" && action != "resume" {
		writeJSON(w, http.StatusNotFound, actionResult{Message: fmt.Sprintf("unknown action %q: want reconcile, suspend or resume", action)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ActionTimeout)
	defer cancel()
	key := client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	obj := k.newObject()
	if err := h.c.Get(ctx, key, obj); err != nil {
		writeJSON(w, apiStatus(err), actionResult{Message: fmt.Sprintf("get %s %s: %v", k.Kind, key, err)})
		return
	}
	switch action {
	case "suspend", "resume":
		if err := h.manual.SetSuspend(ctx, k.Kind, obj, action == "suspend"); err != nil {
			writeJSON(w, apiStatus(err), actionResult{Message: err.Error()})
			return
		}
		if action == "suspend" {
			writeJSON(w, http.StatusOK, actionResult{OK: true, Message: fmt.Sprintf("%s %s suspended", k.Kind, key)})
			return
		}
	}
	requested, err := h.manual.RequestReconcile(ctx, k.Kind, obj)
	if err != nil {
		status := http.StatusConflict
		var apiErr apierrors.APIStatus
		if errors.As(err, &apiErr) {
			status = apiStatus(err)
		}
		writeJSON(w, status, actionResult{Message: err.Error()})
		return
	}
	if err := h.manual.AwaitReconcile(ctx, k.Kind, obj, requested, nil); err != nil {
		writeJSON(w, http.StatusGatewayTimeout, actionResult{Message: h.waitError(r, err, fmt.Sprintf("the operator to reconcile %s %s (is it running?)", k.Kind, key))})
		return
	}
	done := "reconciled"
	if action == "resume" {
		done = "resumed and reconciled"
	}
	ready := manual.StateOf(obj).Ready()
	switch {
	case ready == nil:
		writeJSON(w, http.StatusOK, actionResult{OK: true, Message: fmt.Sprintf("%s %s %s; it has no Ready condition yet", k.Kind, key, done)})
	case ready.Status == metav1.ConditionFalse:
		writeJSON(w, http.StatusConflict, actionResult{Message: fmt.Sprintf("%s %s %s but is not ready (%s): %s", k.Kind, key, done, ready.Reason, ready.Message)})
	default:
		writeJSON(w, http.StatusOK, actionResult{OK: true, Message: fmt.Sprintf("%s %s %s: Ready=%s: %s", k.Kind, key, done, ready.Status, ready.Message)})
	}
}

// waitError says why a wait for the operator ended: the page went away,
// or the action's timeout passed first.
func (h *handler) waitError(r *http.Request, err error, what string) string {
	if r.Context().Err() != nil {
		return "the page went away while waiting for " + what
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %s waiting for %s", h.opts.ActionTimeout, what)
	}
	return fmt.Sprintf("waiting for %s: %v", what, err)
}
