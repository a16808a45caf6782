package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StopTheLinePolicy is the ReleasePolicy that `sluicectl freeze --all`
// creates and `sluicectl unfreeze --all` clears: it matches every Canary,
// and its spec.stop holds all of them.
const StopTheLinePolicy = "sluice-stop-the-line"

// Condition types and reasons of release governance.
const (
	// FrozenCondition is set on a Canary while a ReleasePolicy that matches
	// it freezes releases, idle or not; it is removed when none does. Its
	// reason says what freezes and its message names the policy, the field,
	// until when, why and, for a stop, who set it.
	FrozenCondition = "Frozen"

	// ReasonStopTheLine: a matching ReleasePolicy's spec.stop is set.
	ReasonStopTheLine = "StopTheLine"
	// ReasonFreezeWindow: a window of spec.freeze.windows or
	// spec.freeze.oneOff is open.
	ReasonFreezeWindow = "FreezeWindow"
	// ReasonInvalidSchedule: a freeze window's schedule or time zone
	// cannot be read. On the ReleasePolicy it is the Ready reason; on its
	// Canaries it freezes, since a freeze that cannot be read might be in
	// force.
	ReasonInvalidSchedule = "InvalidSchedule"

	// ReasonFrozen is the Ready reason of a Canary whose new revision
	// waits for a freeze to end, or whose release in flight holds.
	ReasonFrozen = "Frozen"
	// ReasonQueued is the Ready reason of a Canary whose new revision
	// waits for a slot under a ReleasePolicy's maxConcurrentCanaries.
	ReasonQueued = "Queued"

	// ReleasePolicyReasonSucceeded is the Ready reason of a ReleasePolicy
	// whose spec could be read.
	ReleasePolicyReasonSucceeded = "Succeeded"
)

// InFlightPolicy says what a freeze does to a release already in flight.
//
// +kubebuilder:validation:Enum=Hold;Finish
type InFlightPolicy string

// In-flight policies.
const (
	// InFlightHold keeps a release in flight at its weight: its checks
	// still run, and a failure still rolls it back, but it does not
	// advance or promote until the freeze ends.
	InFlightHold InFlightPolicy = "Hold"
	// InFlightFinish lets a release in flight go on to its end.
	InFlightFinish InFlightPolicy = "Finish"
)

// ReleasePolicy governs when the Canaries it matches may release: how many
// may release at once, and when releases are frozen. It is cluster-scoped,
// matched to Canaries by the labels of their namespace and their own.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=rp,categories=all
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.spec.maxConcurrentCanaries`
// +kubebuilder:printcolumn:name="Running",type=integer,JSONPath=`.status.running`
// +kubebuilder:printcolumn:name="Queued",type=integer,JSONPath=`.status.queued`
// +kubebuilder:printcolumn:name="Frozen",type=string,JSONPath=`.status.activeFreeze.field`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ReleasePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ReleasePolicySpec   `json:"spec,omitempty"`
	Status ReleasePolicyStatus `json:"status,omitempty"`
}

// GetConditions returns the status conditions.
func (p *ReleasePolicy) GetConditions() []metav1.Condition {
	return p.Status.Conditions
}

// ReleasePolicyList is a list of ReleasePolicies.
//
// +kubebuilder:object:root=true
type ReleasePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ReleasePolicy `json:"items"`
}

// ReleasePolicySpec says which Canaries a policy governs and how.
type ReleasePolicySpec struct {
	// NamespaceSelector matches the namespaces whose Canaries the policy
	// governs, by their labels; unset or empty matches every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// CanarySelector narrows the policy to the Canaries with these labels;
	// unset or empty matches every Canary of the selected namespaces.
	// +optional
	CanarySelector *metav1.LabelSelector `json:"canarySelector,omitempty"`

	// MaxConcurrentCanaries is how many of the matched Canaries may release
	// at once: a release holds its slot from Progressing to its end
	// (Succeeded or Failed). A new revision over the limit waits, in the
	// Waiting phase, in arrival order. Unset means no limit.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxConcurrentCanaries *int32 `json:"maxConcurrentCanaries,omitempty"`

	// Freeze holds new revisions before their first step while a window is
	// open.
	// +optional
	Freeze *ReleaseFreeze `json:"freeze,omitempty"`

	// Stop, when set, stops the line: no matched Canary starts a release,
	// and releases in flight hold, until it is cleared. Rollbacks, and
	// aborts, still go through. `sluicectl freeze --all` sets it on the
	// ReleasePolicy sluice-stop-the-line.
	// +optional
	Stop *StopTheLine `json:"stop,omitempty"`
}

// ReleaseFreeze is when releases are frozen.
type ReleaseFreeze struct {
	// Windows are recurring freezes: each opens at every time its cron
	// schedule names and lasts its duration.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Windows []FreezeWindow `json:"windows,omitempty"`

	// OneOff are single freezes, from start to end.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	OneOff []OneOffFreeze `json:"oneOff,omitempty"`

	// InFlight says what happens to a release already in flight when a
	// window opens: Hold (the default) keeps it at its weight, checks
	// still running and rollbacks still possible; Finish lets it finish.
	// +optional
	// +kubebuilder:default=Hold
	InFlight InFlightPolicy `json:"inFlight,omitempty"`
}

// FreezeWindow is a recurring freeze.
type FreezeWindow struct {
	// Schedule is when the window opens: a cron expression of five fields
	// (minute, hour, day of month, month, day of week), such as
	// "0 18 * * 5" for Fridays at 18:00, or @daily, @weekly, @monthly,
	// @yearly or @hourly.
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|[0-9A-Za-z*/,?-]+( +[0-9A-Za-z*/,?-]+){4})$')",message="schedule must be a cron expression of five fields (minute hour day-of-month month day-of-week), such as 0 18 * * 5, or one of @yearly, @monthly, @weekly, @daily, @hourly"
	Schedule string `json:"schedule"`

	// Duration is how long the window stays open, such as 2h or 64h30m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$') && duration(self) > duration('0s')",message="duration must be a positive duration, such as 2h or 90m"
	Duration metav1.Duration `json:"duration"`

	// TimeZone is the IANA time zone the schedule is read in, such as
	// Europe/Paris.
	// +optional
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$') && self != 'Local'",message="timeZone must be an IANA time zone name, such as UTC or Europe/Paris"
	TimeZone string `json:"timeZone,omitempty"`

	// Reason says why releases are frozen, shown on the Canaries held.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
}

// OneOffFreeze is a single freeze.
//
// +kubebuilder:validation:XValidation:rule="self.end > self.start",message="end must be after start",fieldPath=".end"
type OneOffFreeze struct {
	// Start is when the freeze begins (RFC 3339).
	Start metav1.Time `json:"start"`

	// End is when it ends (RFC 3339), after start.
	End metav1.Time `json:"end"`

	// Reason says why releases are frozen, shown on the Canaries held.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
}

// StopTheLine is a cluster-wide stop, kept in the API so that every
// replica, and a restarted operator, honours it.
type StopTheLine struct {
	// Reason says why, shown on every Canary held.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`

	// SetBy names who stopped the line; sluicectl writes the user the API
	// server authenticates.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	SetBy string `json:"setBy,omitempty"`

	// SetAt is when the line was stopped.
	// +optional
	SetAt *metav1.Time `json:"setAt,omitempty"`
}

// ReleasePolicyStatus is what the policy does now.
type ReleasePolicyStatus struct {
	// ObservedGeneration is the generation last acted upon.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready is False, with the reason InvalidSchedule and the
	// field, when a freeze window cannot be read (kstatus: Stalled).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ActiveFreeze is the freeze in force, if any.
	// +optional
	ActiveFreeze *ActiveFreeze `json:"activeFreeze,omitempty"`

	// Running counts the matched Canaries that hold a slot: Progressing,
	// WaitingPromotion, Promoting or Finalising.
	// +optional
	Running int32 `json:"running"`

	// Queued counts the matched Canaries whose new revision waits for a
	// slot.
	// +optional
	Queued int32 `json:"queued"`

	// Queue lists the first of them, in the order they will start.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=100
	Queue []QueuedCanary `json:"queue,omitempty"`
}

// ActiveFreeze is a freeze in force.
type ActiveFreeze struct {
	// Field is what freezes: spec.stop, spec.freeze.windows[i] or
	// spec.freeze.oneOff[i].
	Field string `json:"field"`

	// Reason says why.
	// +optional
	Reason string `json:"reason,omitempty"`

	// SetBy names who stopped the line, for spec.stop.
	// +optional
	SetBy string `json:"setBy,omitempty"`

	// Until is when it ends; unset for spec.stop, which lasts until it is
	// cleared.
	// +optional
	Until *metav1.Time `json:"until,omitempty"`
}

// QueuedCanary is a Canary waiting for a slot.
type QueuedCanary struct {
	// Namespace of the Canary.
	Namespace string `json:"namespace"`
	// Name of the Canary.
	Name string `json:"name"`
	// ArrivedAt is when its revision began to wait.
	ArrivedAt metav1.MicroTime `json:"arrivedAt"`
}

// AdmissionStatus records a Canary's new revision as ReleasePolicies see
// it: when it arrived, which orders the queue, and when it was admitted.
// It is kept in the Canary's status so that a restarted operator keeps
// the queue's order.
type AdmissionStatus struct {
	// Revision is the target revision the record is about.
	Revision string `json:"revision"`
	// ArrivedAt is when the revision first waited for, or was admitted by,
	// a ReleasePolicy.
	ArrivedAt metav1.MicroTime `json:"arrivedAt"`
	// AdmittedAt is when it was let start; unset while it waits.
	// +optional
	AdmittedAt *metav1.MicroTime `json:"admittedAt,omitempty"`
}
