package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// pollInterval is how often waiting commands read the object again.
// Polling a single object is cheap, and unlike a watch it needs no list
// permission and survives a dropped connection.
const pollInterval = 500 * time.Millisecond

func (g *globals) getCanary(ctx context.Context, name string) (*sluicev1beta1.Canary, error) {
	c, err := g.kubeClient()
	if err != nil {
		return nil, err
	}
	ns, err := g.namedNamespace()
	if err != nil {
		return nil, err
	}
	obj, err := getObject(ctx, c, canaryKind(), ns, name)
	if err != nil {
		return nil, err
	}
	cn, ok := obj.(*sluicev1beta1.Canary)
	if !ok {
		return nil, fmt.Errorf("read Canary %s/%s: got a %T", ns, name, obj)
	}
	return cn, nil
}

// watchStatus prints a line each time the Canary's status changes, until
// its release ends or --timeout passes.
func (g *globals) watchStatus(parent context.Context, name string) error {
	ctx, cancel, timeout := g.withTimeout(parent, watchTimeout)
	defer cancel()
	cn, err := g.getCanary(ctx, name)
	if err != nil {
		if ctx.Err() != nil {
			return g.watchEnded(parent, ctx, timeout, fmt.Sprintf("Canary %s", name))
		}
		return err
	}
	c, err := g.kubeClient()
	if err != nil {
		return err
	}
	key := client.ObjectKeyFromObject(cn)
	start := cn.Status.Phase
	var prev sluicev1beta1.CanaryPhase
	var last string
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		phase := cn.Status.Phase
		if line := statusLine(cn); line != last {
			fmt.Fprintf(g.streams.Out, "%s  %s\n", time.Now().Format(time.TimeOnly), line)
			last = line
		}
		if done, code := watchOutcome(start, prev, phase); done {
			if code == 0 {
				return nil
			}
			return &ExitError{Code: code, Err: fmt.Errorf("the release of Canary %s was rolled back: %s", key, failureMessage(cn))}
		}
		select {
		case <-ctx.Done():
			return g.watchEnded(parent, ctx, timeout, fmt.Sprintf("Canary %s to finish its release (phase %s)", key, phaseName(phase)))
		case <-ticker.C:
		}
		next := &sluicev1beta1.Canary{}
		if err := c.Get(ctx, key, next); err != nil {
			if ctx.Err() != nil {
				continue // reported by the select above
			}
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("the Canary %s was deleted while it was watched", key)
			}
			// One failed poll should not end a watch that may last half
			// an hour; the next poll tries again.
			fmt.Fprintf(g.streams.Err, "read Canary %s: %v\n", key, err)
			continue
		}
		// prev is the phase seen before the current one, so that a
		// return to Initialized after a release can be told apart from
		// an idle Canary.
		if next.Status.Phase != phase {
			prev = phase
		}
		cn = next
	}
}

// watchEnded is the error of a wait that ran out: a timeout (exit code 2)
// when ctx's own deadline passed, the parent's error when it was
// cancelled (Ctrl-C).
func (g *globals) watchEnded(parent, ctx context.Context, timeout time.Duration, what string) error {
	if parent.Err() != nil {
		return parent.Err()
	}
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("timed out after %s waiting for %s", timeout, what)}
	}
	return err
}

// releasing says whether phase is one of a release under way.
func releasing(phase sluicev1beta1.CanaryPhase) bool {
	switch phase {
	case sluicev1beta1.CanaryPhaseProgressing, sluicev1beta1.CanaryPhasePromoting, sluicev1beta1.CanaryPhaseFinalising:
		return true
	}
	return false
}

// watchOutcome says whether `status --watch` is done at phase, having
// started at start and seen prev just before, and with which exit code.
// Succeeded ends it with 0 and Failed with 1. Initialized ends it with 0
// only after a release (prev was Progressing, Promoting or Finalising),
// or when the Canary had already succeeded at start: an Initialized
// Canary that has not released yet may be about to, so the watch waits
// for that release.
func watchOutcome(start, prev, phase sluicev1beta1.CanaryPhase) (done bool, code int) {
	switch phase {
	case sluicev1beta1.CanaryPhaseSucceeded:
		return true, 0
	case sluicev1beta1.CanaryPhaseFailed:
		return true, ExitFailure
	case sluicev1beta1.CanaryPhaseInitialized:
		if releasing(prev) || start == sluicev1beta1.CanaryPhaseSucceeded {
			return true, 0
		}
	}
	return false, 0
}

// failureMessage says why a Canary failed, from its conditions.
func failureMessage(cn *sluicev1beta1.Canary) string {
	for _, t := range []string{sluicev1beta1.ReadyCondition, sluicev1beta1.PromotedCondition, sluicev1beta1.StalledCondition} {
		if cond := meta.FindStatusCondition(cn.Status.Conditions, t); cond != nil && cond.Message != "" {
			return cond.Message
		}
	}
	return fmt.Sprintf("phase %s with %d failed checks", cn.Status.Phase, cn.Status.FailedChecks)
}

func phaseName(p sluicev1beta1.CanaryPhase) string {
	if p == "" {
		return "not set"
	}
	return string(p)
}
