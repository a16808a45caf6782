package v1beta1

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RequestAnnotation on a Canary carries a manual request (promote, abort,
// retry, pause, resume) as the JSON of a Request. It is an annotation, not
// a spec field, so that a GitOps tool re-applying the Canary from Git does
// not undo it: server-side apply leaves alone the fields another manager
// set, and the request's effect is kept in the status.
const RequestAnnotation = "sluice.dev/request"

// RequestAction is what a manual request asks for.
//
// +kubebuilder:validation:Enum=promote;abort;retry;pause;resume
type RequestAction string

// Manual request actions.
const (
	// RequestPromote approves the gates that wait (confirm-rollout,
	// confirm-traffic-increase, confirm-promotion) and runs the next step
	// now; with Full, it promotes at once, skipping the remaining steps.
	RequestPromote RequestAction = "promote"
	// RequestAbort rolls the revision under analysis back now.
	RequestAbort RequestAction = "abort"
	// RequestRetry analyses a rolled-back revision again, without a change
	// to the workload.
	RequestRetry RequestAction = "retry"
	// RequestPause holds the Canary where it is: no step, promotion or new
	// rollout until it is resumed.
	RequestPause RequestAction = "pause"
	// RequestResume lets a paused Canary go on.
	RequestResume RequestAction = "resume"
)

// Request is a manual request, as the RequestAnnotation holds it.
type Request struct {
	// ID identifies the request; the operator handles each ID once and
	// echoes it in status.lastRequest. sluicectl uses the time of the
	// request.
	ID string `json:"id"`
	// Action is what is asked.
	Action RequestAction `json:"action"`
	// Full, with promote, skips the remaining steps.
	Full bool `json:"full,omitempty"`
	// By names who asked, for the status and the Event.
	By string `json:"by,omitempty"`
}

// ParseRequest reads a RequestAnnotation value. The error names the
// annotation and what is wrong.
func ParseRequest(value string) (Request, error) {
	var r Request
	if err := json.Unmarshal([]byte(value), &r); err != nil {
		return r, fmt.Errorf("metadata.annotations[%s]: not a request: %w", RequestAnnotation, err)
	}
	switch r.Action {
	case RequestPromote, RequestAbort, RequestRetry, RequestPause, RequestResume:
	default:
		return r, fmt.Errorf("metadata.annotations[%s]: unknown action %q: want promote, abort, retry, pause or resume", RequestAnnotation, r.Action)
	}
	if r.ID == "" {
		return r, fmt.Errorf("metadata.annotations[%s]: id is required", RequestAnnotation)
	}
	if r.Full && r.Action != RequestPromote {
		return r, fmt.Errorf("metadata.annotations[%s]: full applies to promote only, not %s", RequestAnnotation, r.Action)
	}
	return r, nil
}

// Annotation is the RequestAnnotation value of r.
func (r Request) Annotation() (string, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	return string(b), nil
}

// RequestOutcome says whether a manual request was carried out.
//
// +kubebuilder:validation:Enum=Accepted;Refused
type RequestOutcome string

// Request outcomes.
const (
	// RequestAccepted: the request was carried out.
	RequestAccepted RequestOutcome = "Accepted"
	// RequestRefused: the request did not apply (nothing to abort, nothing
	// failed to retry, an invalid request); the message says why. Nothing
	// changed.
	RequestRefused RequestOutcome = "Refused"
)

// RequestStatus is the operator's answer to the last manual request.
type RequestStatus struct {
	// ID of the request handled.
	ID string `json:"id"`
	// Action requested.
	// +optional
	Action RequestAction `json:"action,omitempty"`
	// Full is set for promote --full.
	// +optional
	Full bool `json:"full,omitempty"`
	// By names who asked.
	// +optional
	By string `json:"by,omitempty"`
	// Outcome is Accepted or Refused.
	Outcome RequestOutcome `json:"outcome"`
	// Message says what was done, or why not.
	// +optional
	Message string `json:"message,omitempty"`
	// Time is when the operator handled it.
	Time metav1.Time `json:"time"`
}

// PauseStatus records a pause requested by hand.
type PauseStatus struct {
	// By names who paused the Canary.
	// +optional
	By string `json:"by,omitempty"`
	// Since is when it was paused.
	Since metav1.Time `json:"since"`
}
