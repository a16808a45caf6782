package health

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/engine"
	"github.com/fluxcd/cli-utils/pkg/kstatus/polling/statusreaders"
	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	"sluice.dev/sluice/pkg/sync/celexpr"
)

// Exprs judge the objects of some kinds by CEL expressions in place of
// kstatus: a spec's healthCheckExprs, compiled. The nil Exprs judges
// nothing.
type Exprs map[schema.GroupKind]*KindExprs

// KindExprs are the expressions of one kind.
type KindExprs struct {
	// field names the entry in messages, such as spec.healthCheckExprs[0].
	field                       string
	inProgress, failed, current *celexpr.Expression
}

// CompileExprs compiles the entries of checks, found at field (such as
// spec.healthCheckExprs), with cache. The error names the field that does
// not compile. As in Flux, the first entry of a group and kind is the one
// used: the version does not matter.
func CompileExprs(cache *celexpr.Cache, field string, checks []syncv1.CustomHealthCheck) (Exprs, error) {
	if len(checks) == 0 {
		return nil, nil
	}
	x := Exprs{}
	for i, hc := range checks {
		at := fmt.Sprintf("%s[%d]", field, i)
		gv, err := schema.ParseGroupVersion(hc.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("%s.apiVersion: %w", at, err)
		}
		// A migrated entry may name Flux's group of Sluice's kind.
		gk := schema.GroupKind{Group: syncv1.SluiceGroup(gv.Group), Kind: hc.Kind}
		k := &KindExprs{field: at}
		for _, e := range []struct {
			name string
			src  string
			into **celexpr.Expression
		}{
			{"current", hc.Current, &k.current},
			{"inProgress", hc.InProgress, &k.inProgress},
			{"failed", hc.Failed, &k.failed},
		} {
			if e.src == "" && e.name != "current" {
				continue
			}
			if *e.into, err = cache.Object(e.src); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", at, e.name, err)
			}
		}
		if _, ok := x[gk]; !ok {
			x[gk] = k
		}
	}
	return x, nil
}

// Status computes u's status by the expressions of its kind, as Flux's
// RFC 0009 says: an object whose status.observedGeneration lags its
// generation is in progress; otherwise inProgress, failed and current are
// tried in that order and the first true one decides; when none is, it is
// in progress. An expression that cannot be evaluated (a field the object
// does not have yet) leaves the object Unknown, with the error as the
// message, so that it is waited for until the timeout, as in Flux. ok is
// false when no expression is of u's kind.
func (x Exprs) Status(ctx context.Context, u *unstructured.Unstructured) (res *status.Result, ok bool) {
	k := x.of(u.GroupVersionKind().GroupKind())
	if k == nil {
		return nil, false
	}
	unknown := func(err error) *status.Result {
		return &status.Result{Status: status.UnknownStatus, Message: err.Error()}
	}
	observed, found, err := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if err != nil {
		return unknown(fmt.Errorf("%s: %w", k.field, err)), true
	}
	if found && observed != u.GetGeneration() {
		return &status.Result{Status: status.InProgressStatus, Message: "status.observedGeneration lags metadata.generation"}, true
	}
	for _, e := range []struct {
		name   string
		expr   *celexpr.Expression
		status status.Status
	}{
		{"inProgress", k.inProgress, status.InProgressStatus},
		{"failed", k.failed, status.FailedStatus},
		{"current", k.current, status.CurrentStatus},
	} {
		if e.expr == nil {
			continue
		}
		yes, err := e.expr.Eval(ctx, u.Object)
		if err != nil {
			return unknown(fmt.Errorf("%s.%s: %w", k.field, e.name, err)), true
		}
		if !yes {
			continue
		}
		msg := ""
		if e.status != status.CurrentStatus {
			msg = fmt.Sprintf("%s.%s is true", k.field, e.name)
		}
		return &status.Result{Status: e.status, Message: msg}, true
	}
	return &status.Result{Status: status.InProgressStatus, Message: k.field + ": no expression is true yet"}, true
}

// of is the entry of a kind: the one that names it, or else the one of its
// whole group (an entry without a kind), as in Flux.
func (x Exprs) of(gk schema.GroupKind) *KindExprs {
	if k, ok := x[gk]; ok {
		return k
	}
	return x[schema.GroupKind{Group: gk.Group}]
}

// StatusReaders are kstatus status readers of the kinds of x, for waits
// that take them, such as Helm's. They evaluate under ctx.
func (x Exprs) StatusReaders(ctx context.Context, mapper meta.RESTMapper) []engine.StatusReader {
	kinds := slices.Collect(maps.Keys(x))
	// Named kinds first, then whole groups, so that a named kind's
	// reader is found before its group's.
	slices.SortFunc(kinds, func(a, b schema.GroupKind) int {
		if (a.Kind == "") != (b.Kind == "") {
			if a.Kind == "" {
				return 1
			}
			return -1
		}
		return strings.Compare(a.String(), b.String())
	})
	readers := make([]engine.StatusReader, 0, len(x))
	for _, gk := range kinds {
		generic := statusreaders.NewGenericStatusReader(mapper, func(u *unstructured.Unstructured) (*status.Result, error) {
			if res, ok := x.Status(ctx, u); ok {
				return res, nil
			}
			return status.Compute(u)
		})
		readers = append(readers, kindReader{StatusReader: generic, gk: gk})
	}
	return readers
}

// kindReader limits a generic reader, which reads every kind, to one.
type kindReader struct {
	engine.StatusReader
	gk schema.GroupKind
}

// Supports is true for the reader's kind only, or for every kind of its
// group when it has no kind. The readers of named kinds come first in
// StatusReaders, so a named kind wins over its group's entry.
func (r kindReader) Supports(gk schema.GroupKind) bool {
	return gk == r.gk || r.gk.Kind == "" && gk.Group == r.gk.Group
}

// WithExprs is a copy of c that judges the kinds of x by their
// expressions; c itself when x is empty.
func (c *Checker) WithExprs(x Exprs) *Checker {
	if c == nil || len(x) == 0 {
		return c
	}
	out := *c
	out.Exprs = x
	return &out
}
