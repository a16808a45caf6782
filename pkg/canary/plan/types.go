// Package plan is the canary state machine: a pure function from what the
// reconciler observed (the Canary's status and spec, its workloads, its
// routes, the answers of its checks, the time) to the next status and the
// actions that get there. It does no I/O and reads no clock, so every phase
// transition is a table test.
//
// When a decision needs an answer it does not have (a webhook gate, a
// metric), Step returns a Need instead of guessing. The reconciler gathers
// those checks and calls Step again with their results.
package plan

import (
	"time"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/traffic"
)

// Input is everything Step decides from.
type Input struct {
	// Now is the time of the decision.
	Now time.Time
	// Generation is the Canary's metadata.generation.
	Generation int64
	// Spec is the Canary's spec, normalized.
	Spec Spec
	// Status is the Canary's status as last written.
	Status sluicev1beta1.CanaryStatus
	// Capabilities are what the Canary's router can do.
	Capabilities traffic.Capabilities
	// Deleting is set when the Canary is being deleted and holds Sluice's
	// finalizer: its changes must be reverted.
	Deleting bool
	// Blocked, when set, says why the Canary cannot be acted on (an
	// unsupported strategy, a provider that is not there); nothing moves
	// until it is fixed.
	Blocked *Problem
	// Target is the workload the Canary releases, which serves as the
	// canary.
	Target Target
	// Primary is the -primary copy that serves production.
	Primary Workload
	// Routes is the traffic split the router reports.
	Routes traffic.Routes
	// Checks holds the answers to the checks a previous Step asked for.
	Checks Checks
	// Metrics, when the Canary has metrics, is what is known of them.
	Metrics *MetricsState
	// Alerts, when the Canary's alerts go to AlertProviders, is whether
	// those are ready.
	Alerts *AlertsState
	// Request, when set, is the manual request the Canary's annotation
	// holds; it is acted on once, when status.lastRequest does not answer
	// it yet.
	Request *Request
	// Release, when set, is what the ReleasePolicies that match the
	// Canary say now: a freeze, a limit on concurrent releases.
	Release *Gate
}

// Problem is a reason the Canary cannot be acted on.
type Problem struct {
	// Reason is a CamelCase reason for conditions and events.
	Reason string
	// Message names the field at fault and what to do.
	Message string
	// Routable is set when the router works despite the problem (a broken
	// metric), so that a manual abort can still move traffic back.
	Routable bool
}

// Target is the observed target workload.
type Target struct {
	Workload
	// PodTemplateHash identifies the target's pod template.
	PodTemplateHash string
	// Configs maps each tracked ConfigMap and Secret to its checksum.
	Configs map[string]string
	// ScaledToZero is set while the target is held at zero.
	ScaledToZero bool
}

// Workload is an observed Deployment or DaemonSet.
type Workload struct {
	// Exists is unset when the workload is not found.
	Exists bool
	// Revision is, for the target, its current revision; for the primary,
	// the target revision it was last copied from.
	Revision string
	// Ready is its rollout status.
	Ready Readiness
}

// Readiness is the rollout status of a workload.
type Readiness struct {
	// Ready is set when the workload runs its current spec with enough
	// available replicas.
	Ready bool
	// Message says what it waits for when it is not ready.
	Message string
	// Stuck is set when its controller gave up on the rollout (a Deployment's
	// ProgressDeadlineExceeded).
	Stuck bool
	// NotReadySince is when it stopped being ready, if known.
	NotReadySince time.Time
}

// Check is something Step may need answered before it decides.
type Check string

// The checks, by the webhook type or metrics they run.
const (
	CheckConfirmRollout         Check = "confirm-rollout"
	CheckPreRollout             Check = "pre-rollout"
	CheckRollout                Check = "rollout"
	CheckMetrics                Check = "metrics"
	CheckConfirmTrafficIncrease Check = "confirm-traffic-increase"
	CheckConfirmPromotion       Check = "confirm-promotion"
	CheckRollback               Check = "rollback"
)

// Outcome is the answer to a check.
type Outcome string

// Outcomes of a check.
const (
	// Pass: the hooks answered 2xx, or every metric is within its range.
	Pass Outcome = "Pass"
	// Fail: a hook failed, or a metric is out of range or has no data
	// under the fail policy.
	Fail Outcome = "Fail"
	// Hold: no decision yet (a metric with no data under the hold policy);
	// the step neither advances nor counts as failed.
	Hold Outcome = "Hold"
)

// Result is the answer to a check.
type Result struct {
	Outcome Outcome
	// Message says what failed or held, or, for a rollback check that
	// passed, which hook asked for it.
	Message string
	// Metrics are the results of each metric, for the metrics check.
	Metrics []sluicev1beta1.CanaryMetricStatus
	// Muted is set when every webhook that failed the check asked for no
	// alert (muteAlert): a gate that waits is then recorded as an event
	// only.
	Muted bool
}

// MetricsState is what the reconciler found out about a Canary's metrics
// before any step: whether their templates render and their providers
// answer.
type MetricsState struct {
	// Problem, when set, blocks the rollout: a missing or broken template.
	Problem *Problem
	// Unhealthy, when set, says which providers failed their health
	// probe. It is reported but does not block: the checks themselves
	// fail while a provider is down.
	Unhealthy string
}

// AlertsState is whether the AlertProviders of a Canary's alerts are
// ready. It is reported and never holds a rollout: a release must not
// wait on a chat service.
type AlertsState struct {
	// Unready, when set, names each provider that is not ready, by the
	// field that routes to it, and why.
	Unready string
}

// Checks are answers to checks, by check.
type Checks map[Check]Result

// Need asks the caller to run checks and call Step again with their
// results.
type Need struct {
	// Step identifies the decision the checks are for; results gathered for
	// another step must not be reused.
	Step string
	// Checks to run, together.
	Checks []Check
	// Admission asks whether a new revision may start under the
	// ReleasePolicies that limit the Canary; the answer goes in
	// Release.Admission.
	Admission bool
}

// Output is the decision of Step.
type Output struct {
	// Status is the next status, to be written once.
	Status sluicev1beta1.CanaryStatus
	// Actions are carried out in order before the status is written.
	Actions []Action
	// Need, when set, replaces the decision: Status and Actions are to be
	// ignored until the checks are answered.
	Need *Need
	// RequeueAfter is when to decide again if nothing changes before.
	RequeueAfter time.Duration
}

// Action is something the reconciler carries out.
type Action interface{ action() }

// CreatePrimary creates the -primary workload from the target, with copies
// of its tracked configs and its autoscaler.
type CreatePrimary struct{}

// TakeOverTraffic points the apex Service and the routing objects at the
// primary; done once the primary is ready, so that nothing is dropped.
type TakeOverTraffic struct{}

// ScaleTarget scales the target up from zero for analysis, or down to zero.
type ScaleTarget struct{ Up bool }

// SetRoutes changes the traffic split.
type SetRoutes struct{ Routes traffic.Routes }

// Promote copies the target's pod template and tracked configs to the
// primary.
type Promote struct{}

// ScalePrimaryForRollback grows an autoscaled primary to carry the canary's
// share too, before traffic moves back to it.
type ScalePrimaryForRollback struct{}

// RunHooks calls the webhooks of a type that need no answer (post-rollout).
type RunHooks struct{ Type sluicev1beta1.HookType }

// Emit records an event, sends it to event webhooks and, when Severity is
// set, alerts.
type Emit struct{ Event Event }

// RecordRelease counts a finished release and its duration.
type RecordRelease struct {
	Result   ReleaseResult
	Duration time.Duration
}

// RevertTarget scales the target back up for the Canary's deletion.
type RevertTarget struct{}

// RevertRouting points the apex Service back at the target and removes the
// routing the Canary added.
type RevertRouting struct{}

// RemoveFinalizer lets the Canary's deletion finish.
type RemoveFinalizer struct{}

func (CreatePrimary) action()           {}
func (TakeOverTraffic) action()         {}
func (ScaleTarget) action()             {}
func (SetRoutes) action()               {}
func (Promote) action()                 {}
func (ScalePrimaryForRollback) action() {}
func (RunHooks) action()                {}
func (Emit) action()                    {}
func (RecordRelease) action()           {}
func (RevertTarget) action()            {}
func (RevertRouting) action()           {}
func (RemoveFinalizer) action()         {}

// ReleaseResult is how a release ended.
type ReleaseResult string

// Release results.
const (
	ReleaseSucceeded ReleaseResult = "succeeded"
	ReleaseSkipped   ReleaseResult = "skipped"
	ReleaseFailed    ReleaseResult = "failed"
)

// Event is a Kubernetes event about the Canary.
type Event struct {
	// Warning marks events about failures.
	Warning bool
	// Reason is a CamelCase reason that says what happened.
	Reason string
	// Message is the human account.
	Message string
	// Severity, when set, also sends the event as an alert.
	Severity sluicev1beta1.AlertSeverity
}

// Event reasons.
const (
	ReasonInitialized        = "Initialized"
	ReasonNewRevision        = "NewRevision"
	ReasonWaitingForApproval = "WaitingForApproval"
	ReasonProgressing        = "Progressing"
	ReasonWeightIncreased    = "WeightIncreased"
	ReasonIterationPassed    = "IterationPassed"
	ReasonMirroring          = "Mirroring"
	ReasonChecksFailed       = "ChecksFailed"
	ReasonHalted             = "Halted"
	ReasonPromoting          = "Promoting"
	ReasonPromoted           = "Promoted"
	ReasonRolledBack         = "RolledBack"
	ReasonPromotionFailed    = "PromotionFailed"
	ReasonReverted           = "Reverted"
	ReasonSuspended          = "Suspended"
	ReasonTerminating        = "Terminating"
	ReasonTerminated         = "Terminated"
	ReasonTargetNotFound     = "TargetNotFound"
	// ReasonRoutingInvalid is a router that cannot work until the
	// Canary's author fixes the field it names.
	ReasonRoutingInvalid = "RoutingInvalid"
)
