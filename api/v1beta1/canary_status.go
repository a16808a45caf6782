package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CanaryPhase is where a Canary is in its lifecycle.
//
// +kubebuilder:validation:Enum="";Initializing;Initialized;Waiting;Progressing;WaitingPromotion;Promoting;Finalising;Succeeded;Failed;Terminating;Terminated
type CanaryPhase string

// Canary phases, in Flagger's names.
const (
	// CanaryPhaseInitializing means the primary and the Services are being
	// created.
	CanaryPhaseInitializing CanaryPhase = "Initializing"
	// CanaryPhaseInitialized means the primary serves all traffic and the
	// Canary waits for a new revision.
	CanaryPhaseInitialized CanaryPhase = "Initialized"
	// CanaryPhaseWaiting means a new revision waits for a confirm-rollout
	// gate.
	CanaryPhaseWaiting CanaryPhase = "Waiting"
	// CanaryPhaseProgressing means a new revision is under analysis.
	CanaryPhaseProgressing CanaryPhase = "Progressing"
	// CanaryPhaseWaitingPromotion means the analysis passed and the
	// promotion waits for a confirm-promotion gate.
	CanaryPhaseWaitingPromotion CanaryPhase = "WaitingPromotion"
	// CanaryPhasePromoting means the canary's spec is being copied to the
	// primary.
	CanaryPhasePromoting CanaryPhase = "Promoting"
	// CanaryPhaseFinalising means traffic is back on the promoted primary
	// and the canary is being scaled down.
	CanaryPhaseFinalising CanaryPhase = "Finalising"
	// CanaryPhaseSucceeded means the last revision was promoted.
	CanaryPhaseSucceeded CanaryPhase = "Succeeded"
	// CanaryPhaseFailed means the last revision was rolled back.
	CanaryPhaseFailed CanaryPhase = "Failed"
	// CanaryPhaseTerminating means the Canary is being deleted and its
	// changes reverted.
	CanaryPhaseTerminating CanaryPhase = "Terminating"
	// CanaryPhaseTerminated means the Canary's changes were reverted.
	CanaryPhaseTerminated CanaryPhase = "Terminated"
)

// Condition types of a Canary.
const (
	// ReadyCondition is kstatus-compatible: True when the Canary is settled
	// (initialized or finished its last revision), False when it failed or
	// cannot work, Unknown while a rollout is in progress.
	ReadyCondition = "Ready"
	// PromotedCondition keeps Flagger's meaning: its reason is the phase, True
	// once a revision is promoted, False when it failed.
	PromotedCondition = "Promoted"
)

// CanaryStatus is the observed state of a Canary. Everything the engine needs
// to resume a rollout after a restart is here.
type CanaryStatus struct {
	// ObservedGeneration is the generation of the spec last acted upon.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Phase of the Canary.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`

	// FailedChecks counts the failed checks of the current analysis.
	FailedChecks int `json:"failedChecks"`

	// CanaryWeight is the percentage of traffic routed to the canary.
	CanaryWeight int `json:"canaryWeight"`

	// Iterations counts the analysis steps of the current A/B test or
	// blue/green switch.
	Iterations int `json:"iterations"`

	// SessionAffinityCookie is the cookie that pins users to the canary in
	// the current analysis.
	// +optional
	SessionAffinityCookie string `json:"sessionAffinityCookie,omitempty"`

	// PreviousSessionAffinityCookie is the canary cookie of the previous
	// analysis, expired on the users' browsers.
	// +optional
	PreviousSessionAffinityCookie string `json:"previousSessionAffinityCookie,omitempty"`

	// PrimarySessionAffinityCookie is the cookie that pins users to the
	// primary during one analysis step.
	// +optional
	PrimarySessionAffinityCookie string `json:"primarySessionAffinityCookie,omitempty"`

	// TrackedConfigs maps each tracked ConfigMap and Secret to the checksum
	// of its data.
	// +optional
	TrackedConfigs map[string]string `json:"trackedConfigs,omitempty"`

	// LastAppliedSpec is the hash of the target's pod template under
	// analysis.
	// +optional
	LastAppliedSpec string `json:"lastAppliedSpec,omitempty"`

	// LastPromotedSpec is the hash of the target's pod template last
	// promoted.
	// +optional
	LastPromotedSpec string `json:"lastPromotedSpec,omitempty"`

	// LastTrackedRevision is the change fence of the target.
	// +optional
	LastTrackedRevision string `json:"lastTrackedRevision,omitempty"`

	// LastTransitionTime is when the phase last changed.
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`

	// Conditions are Ready (kstatus) and Promoted (Flagger).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GetConditions returns the status conditions.
func (c *Canary) GetConditions() []metav1.Condition {
	return c.Status.Conditions
}

// SetConditions replaces the status conditions.
func (c *Canary) SetConditions(conditions []metav1.Condition) {
	c.Status.Conditions = conditions
}
