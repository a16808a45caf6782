// Package manual sends the requests a person makes by hand: a Canary's
// promote, abort, retry, pause and resume (the sluice.dev/request
// annotation), and a sync object's reconcile request, suspend and resume.
// sluicectl and the dashboard both send them through here, so that the
// operator sees the same request whichever one a person used.
//
// Every write is a JSON merge patch of an annotation or of spec.suspend:
// it touches nothing else that the operator or a GitOps tool may be
// writing at the same time.
package manual

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// DefaultPollInterval is how often a wait reads the object again when
// Requester.PollInterval is zero. Polling a single object is cheap, and
// unlike a watch it needs no list permission and survives a dropped
// connection.
const DefaultPollInterval = 500 * time.Millisecond

// Requester sends manual requests through Client, writing as FieldOwner.
type Requester struct {
	// Client reads and patches the objects, as the person asking.
	Client client.Client
	// FieldOwner is the field manager of the patches, such as "sluicectl".
	FieldOwner string
	// PollInterval is how often a wait reads the object again;
	// DefaultPollInterval when zero.
	PollInterval time.Duration
}

// WhoAmI names the user the API server authenticates, for a request's
// record, from a SelfSubjectReview. The error is the API server's own:
// callers word it, since a request may still be sent unnamed.
func (r Requester) WhoAmI(ctx context.Context) (string, error) {
	review := &authenticationv1.SelfSubjectReview{}
	if err := r.Client.Create(ctx, review); err != nil {
		return "", err
	}
	return review.Status.UserInfo.Username, nil
}

// SendCanary writes req to the Canary's request annotation. It gives the
// request an ID (the time, unless req has one already) and returns the
// request as sent, whose ID AwaitCanary waits for.
func (r Requester) SendCanary(ctx context.Context, cn *sluicev1beta1.Canary, req sluicev1beta1.Request) (sluicev1beta1.Request, error) {
	if req.ID == "" {
		req.ID = time.Now().UTC().Format(time.RFC3339Nano)
	}
	value, err := req.Annotation()
	if err != nil {
		return req, err
	}
	if err := r.MergePatch(ctx, cn, AnnotationPatch(sluicev1beta1.RequestAnnotation, value)); err != nil {
		return req, fmt.Errorf("request %s of Canary %s: %w", req.Action, client.ObjectKeyFromObject(cn), err)
	}
	return req, nil
}

// AwaitCanary reads the Canary key until the operator has answered the
// request id in status.lastRequest, and returns the answer; a Refused
// answer is an answer, not an error. It returns ctx's error when ctx ends
// first. Each failed read goes to readErr, when it is not nil, and the
// wait goes on: a read may fail while the API server restarts.
func (r Requester) AwaitCanary(ctx context.Context, key client.ObjectKey, id string, readErr func(error)) (*sluicev1beta1.RequestStatus, error) {
	var answer *sluicev1beta1.RequestStatus
	err := r.Poll(ctx, func() bool {
		cn := &sluicev1beta1.Canary{}
		if err := r.Client.Get(ctx, key, cn); err != nil {
			if ctx.Err() == nil && readErr != nil {
				readErr(fmt.Errorf("read Canary %s: %w", key, err))
			}
			return false
		}
		if a := cn.Status.LastRequest; a != nil && a.ID == id {
			answer = a
			return true
		}
		return false
	})
	return answer, err
}

// RequestReconcile sets the reconcile request annotation on obj, a sync
// object of the kind named kind, and returns the value it set, which
// AwaitReconcile waits for. A suspended object is refused: it is never
// reconciled, so waiting would only run into the timeout.
func (r Requester) RequestReconcile(ctx context.Context, kind string, obj client.Object) (string, error) {
	key := client.ObjectKeyFromObject(obj)
	if StateOf(obj).Suspended {
		return "", fmt.Errorf("%s %s is suspended; resume it to reconcile it", kind, key)
	}
	requested := time.Now().Format(time.RFC3339Nano)
	if err := r.MergePatch(ctx, obj, AnnotationPatch(sourcev1.ReconcileRequestAnnotation, requested)); err != nil {
		return "", fmt.Errorf("request a reconcile of %s %s: %w", kind, key, err)
	}
	return requested, nil
}

// AwaitReconcile reads obj again until the operator has echoed requested
// in status.lastHandledReconcileAt, leaving the last read in obj. It
// returns ctx's error when ctx ends first; failed reads go to readErr, as
// in AwaitCanary.
func (r Requester) AwaitReconcile(ctx context.Context, kind string, obj client.Object, requested string, readErr func(error)) error {
	key := client.ObjectKeyFromObject(obj)
	return r.Poll(ctx, func() bool {
		if err := r.Client.Get(ctx, key, obj); err != nil {
			if ctx.Err() == nil && readErr != nil {
				readErr(fmt.Errorf("read %s %s: %w", kind, key, err))
			}
			return false
		}
		return StateOf(obj).LastHandled == requested
	})
}

// SetSuspend sets spec.suspend of obj, a sync object of the kind named
// kind, and nothing else.
func (r Requester) SetSuspend(ctx context.Context, kind string, obj client.Object, suspend bool) error {
	if err := r.MergePatch(ctx, obj, map[string]any{"spec": map[string]any{"suspend": suspend}}); err != nil {
		return fmt.Errorf("set spec.suspend to %t on %s %s: %w", suspend, kind, client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

// Poll calls done now and then every PollInterval until it returns true,
// or returns ctx's error when ctx ends first.
func (r Requester) Poll(ctx context.Context, done func() bool) error {
	interval := r.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if done() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}

// MergePatch writes patch to obj as a JSON merge patch, which touches
// nothing else the operator or a GitOps tool may be writing at the same
// time.
func (r Requester) MergePatch(ctx context.Context, obj client.Object, patch map[string]any) error {
	data, err := json.Marshal(patch)
	if err != nil {
		return fmt.Errorf("encode the patch: %w", err)
	}
	return r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, data), client.FieldOwner(r.FieldOwner))
}

// AnnotationPatch is the merge patch that sets one annotation.
func AnnotationPatch(key, value string) map[string]any {
	return map[string]any{"metadata": map[string]any{"annotations": map[string]string{key: value}}}
}

// Describe names what a request asks for, as messages say it: "full
// promotion" for promote --full, else the action.
func Describe(req sluicev1beta1.Request) string {
	if req.Full {
		return "full promotion"
	}
	return string(req.Action)
}
