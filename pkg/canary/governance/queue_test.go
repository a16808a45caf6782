package governance

import (
	"testing"
	"time"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func TestPlace(t *testing.T) {
	at := func(s int) time.Time { return friday.Add(time.Duration(s) * time.Second) }
	running := func(key string) Candidate { return Candidate{Key: key, Occupying: true} }
	waiting := func(key string, s int) Candidate { return Candidate{Key: key, Waiting: true, ArrivedAt: at(s)} }
	tests := []struct {
		name     string
		self     Candidate
		others   []Candidate
		limit    int
		admitted bool
		position int
		running  int
	}{
		{name: "a free slot admits the first arrival", self: Candidate{Key: "ns/a", ArrivedAt: at(0)}, limit: 2, admitted: true, position: 1},
		{name: "a full policy queues it", self: Candidate{Key: "ns/c", ArrivedAt: at(5)}, others: []Candidate{running("ns/a"), running("ns/b")}, limit: 2, position: 1, running: 2},
		{
			name: "a later arrival waits behind an earlier one even with a slot free",
			self: Candidate{Key: "ns/c", ArrivedAt: at(5)}, others: []Candidate{running("ns/a"), waiting("ns/b", 3)},
			limit: 2, position: 2, running: 1,
		},
		{
			name: "the earliest arrival takes the free slot",
			self: Candidate{Key: "ns/b", ArrivedAt: at(3)}, others: []Candidate{running("ns/a"), waiting("ns/c", 5)},
			limit: 2, admitted: true, position: 1, running: 1,
		},
		{
			name: "equal arrivals are ordered by name",
			self: Candidate{Key: "ns/b", ArrivedAt: at(3)}, others: []Candidate{waiting("ns/a", 3)},
			limit: 1, position: 2,
		},
		{
			name: "its own stale entry is not counted",
			self: Candidate{Key: "ns/a", ArrivedAt: at(3)}, others: []Candidate{waiting("ns/a", 1), running("ns/b")},
			limit: 2, admitted: true, position: 1, running: 1,
		},
		{
			name: "the third of four waits while two run",
			self: Candidate{Key: "ns/e", ArrivedAt: at(4)}, others: []Candidate{running("ns/a"), running("ns/b"), waiting("ns/c", 1), waiting("ns/d", 2), waiting("ns/f", 9)},
			limit: 2, position: 3, running: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			admitted, position, running := Place(tt.self, tt.others, tt.limit)
			if admitted != tt.admitted || position != tt.position || running != tt.running {
				t.Fatalf("admitted %v, position %d, running %d; want %v, %d, %d", admitted, position, running, tt.admitted, tt.position, tt.running)
			}
		})
	}
}

func TestOccupies(t *testing.T) {
	for _, tt := range []struct {
		phase sluicev1beta1.CanaryPhase
		want  bool
	}{
		{sluicev1beta1.CanaryPhaseInitialized, false},
		{sluicev1beta1.CanaryPhaseWaiting, false},
		{sluicev1beta1.CanaryPhaseProgressing, true},
		{sluicev1beta1.CanaryPhaseWaitingPromotion, true},
		{sluicev1beta1.CanaryPhasePromoting, true},
		{sluicev1beta1.CanaryPhaseFinalising, true},
		{sluicev1beta1.CanaryPhaseSucceeded, false},
		{sluicev1beta1.CanaryPhaseFailed, false},
	} {
		name := "a " + string(tt.phase) + " Canary holds no slot"
		if tt.want {
			name = "a " + string(tt.phase) + " Canary holds a slot"
		}
		t.Run(name, func(t *testing.T) {
			if got := Occupies(tt.phase); got != tt.want {
				t.Fatalf("occupies %v, want %v", got, tt.want)
			}
		})
	}
}
