package governance

import (
	"slices"
	"time"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// Candidate is a Canary as a policy's queue sees it.
type Candidate struct {
	// Key is namespace/name; it breaks ties between equal arrivals.
	Key string
	// Occupying is set while it holds a slot.
	Occupying bool
	// Waiting is set while its new revision waits in the queue.
	Waiting bool
	// ArrivedAt is when that revision arrived.
	ArrivedAt time.Time
}

// Occupies reports whether a phase holds a slot: from the first step of
// a release to its end. Waiting, for a gate or a slot, does not.
func Occupies(p sluicev1beta1.CanaryPhase) bool {
	switch p {
	case sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhaseWaitingPromotion,
		sluicev1beta1.CanaryPhasePromoting, sluicev1beta1.CanaryPhaseFinalising:
		return true
	}
	return false
}

// Queue orders the waiting candidates: by arrival, then by key.
func Queue(candidates []Candidate) []Candidate {
	var q []Candidate
	for _, c := range candidates {
		if c.Waiting {
			q = append(q, c)
		}
	}
	slices.SortStableFunc(q, func(a, b Candidate) int {
		if c := a.ArrivedAt.Compare(b.ArrivedAt); c != 0 {
			return c
		}
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return q
}

// Running counts the candidates that hold a slot.
func Running(candidates []Candidate) int {
	n := 0
	for _, c := range candidates {
		if c.Occupying {
			n++
		}
	}
	return n
}

// Place decides whether self may start under a limit, given the policy's
// other candidates: it may when its place in the queue, counted with the
// others waiting, is within the free slots. A later arrival never starts
// before an earlier one. It returns that place, from 1, and how many hold
// a slot.
func Place(self Candidate, others []Candidate, limit int) (admitted bool, position, running int) {
	self.Waiting = true
	all := make([]Candidate, 0, len(others)+1)
	for _, o := range others {
		if o.Key != self.Key {
			all = append(all, o)
		}
	}
	running = Running(all)
	all = append(all, self)
	for i, c := range Queue(all) {
		if c.Key == self.Key {
			position = i + 1
			break
		}
	}
	return position <= limit-running, position, running
}
