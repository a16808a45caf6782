// Package alert holds what the canary engine tells the notification layer
// about a release: a leaf that both import, so that neither imports the
// other.
package alert

import sluicev1beta1 "sluice.dev/sluice/api/v1beta1"

// Canary is a notification about a Canary. The Canary it is sent with
// carries the target, phase, weight and failed checks.
type Canary struct {
	Severity sluicev1beta1.AlertSeverity
	// Reason is the event reason, such as RolledBack.
	Reason  string
	Message string
	// Metric is the metric that failed the step, if one did.
	Metric *FailedMetric
}

// FailedMetric is a metric that failed an analysis step, for alerts.
type FailedMetric struct {
	Name string
	// Value is the value the query returned, as a decimal; empty when it
	// returned none.
	Value string
	// Min and Max are the metric's range; nil is unbounded.
	Min, Max *float64
}
