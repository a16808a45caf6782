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
	// ReconcilingCondition is kstatus' "in progress": True while a rollout
	// runs.
	ReconcilingCondition = "Reconciling"
	// StalledCondition is kstatus' "failed": True when the last rollout was
	// rolled back or the spec cannot be acted on.
	StalledCondition = "Stalled"
	// AlertsReadyCondition is True when every AlertProvider that receives
	// the Canary's alerts is Ready; False names the provider and why. It
	// never holds a rollout.
	AlertsReadyCondition = "AlertsReady"
	// MetricsReadyCondition is True when every metric's template renders
	// and its provider answers its health probe; False names the metric and
	// what is wrong. A rollout does not start while it is False.
	MetricsReadyCondition = "MetricsReady"
)

// Finalizer is set on Canaries with revertOnDeletion, so that their changes
// are reverted before they are deleted.
const Finalizer = "sluice.dev/finalizer"

// Labels and annotations Sluice sets on the objects it generates or reads.
const (
	// RevisionAnnotation on a primary workload names the target revision its
	// pod template was copied from.
	RevisionAnnotation = "sluice.dev/revision"
	// ConfigChecksumAnnotation on a primary pod template holds the checksum
	// of the tracked configs, so that a config-only change rolls its pods.
	ConfigChecksumAnnotation = "sluice.dev/config-checksum"
	// ConfigTrackingAnnotation set to "disabled" on a ConfigMap or Secret
	// keeps it out of config tracking.
	ConfigTrackingAnnotation = "sluice.dev/config-tracking"
	// FlaggerConfigTrackingAnnotation is Flagger's name for
	// ConfigTrackingAnnotation, honoured so that migrated objects keep their
	// opt-out.
	FlaggerConfigTrackingAnnotation = "flagger.app/config-tracking"
	// OriginalConfigurationAnnotation on an adopted object holds its spec from
	// before Sluice changed it, restored by revertOnDeletion.
	OriginalConfigurationAnnotation = "sluice.dev/original-configuration"
	// ScaleToZeroNodeSelector is the node selector that keeps a DaemonSet's
	// pods off every node while its Canary holds it at zero.
	ScaleToZeroNodeSelector = "sluice.dev/scale-to-zero"
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
	// +optional
	FailedChecks int `json:"failedChecks"`

	// CanaryWeight is the percentage of traffic routed to the canary.
	// +optional
	CanaryWeight int `json:"canaryWeight"`

	// Iterations counts the analysis steps of the current A/B test or
	// blue/green switch.
	// +optional
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

	// LastStepTime is when the last analysis step ran; the next one is due
	// one analysis interval later. Kept in status so that a restarted
	// operator neither repeats nor skips a step.
	// +optional
	LastStepTime *metav1.Time `json:"lastStepTime,omitempty"`

	// RolloutStartTime is when the rollout of the revision under analysis
	// began, for the release duration.
	// +optional
	RolloutStartTime *metav1.Time `json:"rolloutStartTime,omitempty"`

	// HoldingSince is when the analysis began to hold for missing metric
	// data (noData: hold); a hold longer than progressDeadlineSeconds rolls
	// back.
	// +optional
	HoldingSince *metav1.Time `json:"holdingSince,omitempty"`

	// Paused is set while a manual pause holds the Canary where it is.
	// +optional
	Paused *PauseStatus `json:"paused,omitempty"`

	// LastRequest is the operator's answer to the last manual request
	// (the sluice.dev/request annotation).
	// +optional
	LastRequest *RequestStatus `json:"lastRequest,omitempty"`

	// Admission records the new revision as the ReleasePolicies that
	// limit or freeze the Canary see it: when it arrived, which orders
	// their queues, and when it was let start.
	// +optional
	Admission *AdmissionStatus `json:"admission,omitempty"`

	// FrozenSince is when a ReleasePolicy's freeze began to hold the
	// release in flight at its weight. The step it held counts as taken:
	// the next one analyses, and it is cleared when one advances.
	// +optional
	FrozenSince *metav1.Time `json:"frozenSince,omitempty"`

	// Metrics are the results of the last analysis step, one per metric.
	// +optional
	// +listType=map
	// +listMapKey=name
	Metrics []CanaryMetricStatus `json:"metrics,omitempty"`

	// Releases are the last releases of the Canary, newest first, with how
	// each ended; the one in flight, if any, is first with the outcome
	// Progressing. The operator keeps at most 10.
	// +optional
	// +kubebuilder:validation:MaxItems=10
	Releases []ReleaseRecord `json:"releases,omitempty"`

	// Steps are the analysis steps and traffic moves of the latest
	// release, oldest first, with the metric values and webhook results
	// that decided each. The operator keeps the last 100.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	Steps []StepRecord `json:"steps,omitempty"`

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

// MetricOutcome is the result of one metric at one analysis step.
//
// +kubebuilder:validation:Enum=Pass;Fail;NoData;Skipped;Error
type MetricOutcome string

// Metric outcomes.
const (
	// MetricPass: the value is within the range.
	MetricPass MetricOutcome = "Pass"
	// MetricFail: the value is outside the range.
	MetricFail MetricOutcome = "Fail"
	// MetricNoData: the query returned no value.
	MetricNoData MetricOutcome = "NoData"
	// MetricSkipped: no value, ignored under noData: skip.
	MetricSkipped MetricOutcome = "Skipped"
	// MetricError: the query could not be run (unreachable, auth, several
	// values).
	MetricError MetricOutcome = "Error"
)

// CanaryMetricStatus is the result of one metric at the last analysis
// step.
type CanaryMetricStatus struct {
	// Name of the metric.
	Name string `json:"name"`

	// Outcome of the check.
	Outcome MetricOutcome `json:"outcome"`

	// Value returned by the query, as a decimal; empty when there was none.
	// +optional
	Value string `json:"value,omitempty"`

	// Message says why the metric failed or had no value.
	// +optional
	Message string `json:"message,omitempty"`

	// LastCheckTime is when the query ran.
	LastCheckTime metav1.Time `json:"lastCheckTime"`
}

// ReleaseOutcome is how a release ended.
//
// +kubebuilder:validation:Enum=Progressing;Promoted;RolledBack;Superseded
type ReleaseOutcome string

// Release outcomes.
const (
	// ReleaseProgressing: the release is in flight.
	ReleaseProgressing ReleaseOutcome = "Progressing"
	// ReleasePromoted: the revision was promoted and serves production.
	ReleasePromoted ReleaseOutcome = "Promoted"
	// ReleaseRolledBack: the revision was rolled back; Message says why.
	ReleaseRolledBack ReleaseOutcome = "RolledBack"
	// ReleaseSuperseded: a newer revision restarted the analysis before
	// this one ended.
	ReleaseSuperseded ReleaseOutcome = "Superseded"
)

// ReleaseRecord is one release of a revision: when it ran and how it
// ended.
type ReleaseRecord struct {
	// Revision is the target revision the release analysed.
	Revision string `json:"revision"`

	// Outcome of the release.
	Outcome ReleaseOutcome `json:"outcome"`

	// StartTime is when its rollout began.
	StartTime metav1.Time `json:"startTime"`

	// EndTime is when it was promoted, rolled back or superseded.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`

	// Message says why it ended: the rollback's reason, who promoted it.
	// +optional
	Message string `json:"message,omitempty"`
}

// StepOutcome is the result of one analysis step.
//
// +kubebuilder:validation:Enum=Pass;Fail;Hold;Move
type StepOutcome string

// Step outcomes.
const (
	// StepPass: every check of the step passed.
	StepPass StepOutcome = "Pass"
	// StepFail: a check failed; the step counts as a failed check.
	StepFail StepOutcome = "Fail"
	// StepHold: a metric had no data under noData: hold; the step neither
	// advanced nor failed.
	StepHold StepOutcome = "Hold"
	// StepMove: traffic moved without an analysis (the promotion's or
	// the rollback's weight change).
	StepMove StepOutcome = "Move"
)

// StepRecord is one analysis step or traffic move of a release.
type StepRecord struct {
	// Time is when the step ran.
	Time metav1.Time `json:"time"`

	// Phase is the Canary's phase after the step.
	Phase CanaryPhase `json:"phase"`

	// Weight is the percentage of traffic on the canary after the step.
	Weight int `json:"weight"`

	// Outcome of the step.
	Outcome StepOutcome `json:"outcome"`

	// Message says what the step did, or why it failed or held.
	// +optional
	Message string `json:"message,omitempty"`

	// Metrics are each metric's value at the step.
	// +optional
	// +listType=map
	// +listMapKey=name
	Metrics []StepMetric `json:"metrics,omitempty"`

	// Webhooks are the results of the webhook checks the step ran, by
	// webhook type.
	// +optional
	// +listType=map
	// +listMapKey=type
	Webhooks []StepWebhook `json:"webhooks,omitempty"`
}

// StepMetric is one metric's result at one step.
type StepMetric struct {
	// Name of the metric.
	Name string `json:"name"`

	// Outcome of the check.
	Outcome MetricOutcome `json:"outcome"`

	// Value returned by the query, as a decimal; empty when there was none.
	// +optional
	Value string `json:"value,omitempty"`
}

// StepWebhook is the result of the webhooks of one type at one step.
type StepWebhook struct {
	// Type of the webhooks: pre-rollout, rollout, rollback, or a gate.
	Type string `json:"type"`

	// Outcome is Pass or Fail.
	Outcome string `json:"outcome"`

	// Message names the webhook that failed and what it answered.
	// +optional
	Message string `json:"message,omitempty"`
}
