package v1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// HistoryMaxSize is how many snapshots a History keeps, as in Flux.
const HistoryMaxSize = 5

// History records the last reconciliations, most recent first, one
// snapshot per digest and outcome, as Flux's status.history does.
type History []Snapshot

// Snapshot is one set of applied objects and how its reconciliations went.
type Snapshot struct {
	// Digest is the checksum, `<algo>:<hex>`, of the objects applied.
	Digest string `json:"digest"`

	// FirstReconciled is when this digest was first reconciled with this
	// status.
	FirstReconciled metav1.Time `json:"firstReconciled"`

	// LastReconciled is when it was last reconciled with this status.
	LastReconciled metav1.Time `json:"lastReconciled"`

	// LastReconciledDuration is how long the last reconciliation took.
	LastReconciledDuration metav1.Duration `json:"lastReconciledDuration"`

	// LastReconciledStatus is the reason of the reconciliation's outcome,
	// such as ReconciliationSucceeded or HealthCheckFailed.
	LastReconciledStatus string `json:"lastReconciledStatus"`

	// TotalReconciliations counts the reconciliations of this digest with
	// this status.
	TotalReconciliations int64 `json:"totalReconciliations"`

	// Metadata holds the source's revision (and origin revision).
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Upsert counts a reconciliation: it updates the snapshot of the same
// digest and status and moves it to the front, or adds a new one there,
// keeping at most HistoryMaxSize.
func (h *History) Upsert(digest string, at time.Time, took time.Duration, status string, metadata map[string]string) {
	now := metav1.NewTime(at)
	for i := range *h {
		s := (*h)[i]
		if s.Digest != digest || s.LastReconciledStatus != status {
			continue
		}
		s.LastReconciled = now
		s.LastReconciledDuration = metav1.Duration{Duration: took}
		s.TotalReconciliations++
		s.Metadata = metadata
		copy((*h)[1:i+1], (*h)[0:i])
		(*h)[0] = s
		return
	}
	*h = append(History{{
		Digest:                 digest,
		FirstReconciled:        now,
		LastReconciled:         now,
		LastReconciledDuration: metav1.Duration{Duration: took},
		LastReconciledStatus:   status,
		TotalReconciliations:   1,
		Metadata:               metadata,
	}}, *h...)
	if len(*h) > HistoryMaxSize {
		*h = (*h)[:HistoryMaxSize]
	}
}
