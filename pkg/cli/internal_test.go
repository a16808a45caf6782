package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func TestLevenshtein(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{"equal strings are at 0", "podinfo", "podinfo", 0},
		{"an empty string is as far as the other is long", "", "apps", 4},
		{"a missing letter is 1", "podinf", "podinfo", 1},
		{"swapped letters are 2", "apsp", "apps", 2},
		{"a changed letter is 1", "podinfa", "podinfo", 1},
		{"runes count as one each", "café", "cafe", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := levenshtein(tt.a, tt.b); got != tt.want {
				t.Errorf("levenshtein(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := levenshtein(tt.b, tt.a); got != tt.want {
				t.Errorf("levenshtein(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

func TestCloseMatches(t *testing.T) {
	names := []string{"podinfo", "podinfo-v2", "backend", "frontend", "apps", "apis", "infrastructure"}
	tests := []struct {
		name string
		typo string
		want []string
	}{
		{"the closest comes first", "podinf", []string{"podinfo", "podinfo-v2"}},
		{"a prefix matches however far", "infra", []string{"infrastructure"}},
		{"a longer name matches the names it starts with", "podinfo-canary", []string{"podinfo"}},
		{"three edits still match", "bakcnd", []string{"backend"}},
		{"four edits do not", "xyzwend", nil},
		{"equal distances sort by name", "apxs", []string{"apis", "apps"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := closeMatches(tt.typo, names); !slices.Equal(got, tt.want) {
				t.Errorf("closeMatches(%q) = %q, want %q", tt.typo, got, tt.want)
			}
		})
	}
}

func TestWatchOutcome(t *testing.T) {
	const (
		none        = sluicev1beta1.CanaryPhase("")
		initialized = sluicev1beta1.CanaryPhaseInitialized
		progressing = sluicev1beta1.CanaryPhaseProgressing
		promoting   = sluicev1beta1.CanaryPhasePromoting
		finalising  = sluicev1beta1.CanaryPhaseFinalising
		succeeded   = sluicev1beta1.CanaryPhaseSucceeded
		failed      = sluicev1beta1.CanaryPhaseFailed
		waiting     = sluicev1beta1.CanaryPhaseWaiting
	)
	tests := []struct {
		name             string
		start, prev, cur sluicev1beta1.CanaryPhase
		done             bool
		code             int
	}{
		{"Succeeded ends with 0", progressing, progressing, succeeded, true, 0},
		{"Succeeded at start ends with 0", succeeded, none, succeeded, true, 0},
		{"Failed ends with 1", progressing, progressing, failed, true, 1},
		{"Failed at start ends with 1", failed, none, failed, true, 1},
		{"Progressing goes on", progressing, none, progressing, false, 0},
		{"Waiting goes on", initialized, initialized, waiting, false, 0},
		{"Initialized at start goes on: a release may be about to start", initialized, none, initialized, false, 0},
		{"Initialized after Progressing ends with 0", progressing, progressing, initialized, true, 0},
		{"Initialized after Promoting ends with 0", progressing, promoting, initialized, true, 0},
		{"Initialized after Finalising ends with 0", progressing, finalising, initialized, true, 0},
		{"Initialized after Waiting goes on", initialized, waiting, initialized, false, 0},
		{"Initialized after a start at Succeeded ends with 0", succeeded, waiting, initialized, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, code := watchOutcome(tt.start, tt.prev, tt.cur)
			if done != tt.done || code != tt.code {
				t.Errorf("watchOutcome(%q, %q, %q) = %t, %d; want %t, %d", tt.start, tt.prev, tt.cur, done, code, tt.done, tt.code)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"no error is 0", nil, 0},
		{"a plain error is 1", errors.New("boom"), ExitFailure},
		{"an ExitError has its code", &ExitError{Code: ExitTimeout, Err: context.DeadlineExceeded}, ExitTimeout},
		{"a wrapped ExitError has its code", fmt.Errorf("watch: %w", &ExitError{Code: ExitTimeout, Err: errors.New("late")}), ExitTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
