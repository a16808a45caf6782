package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	"sluice.dev/sluice/pkg/sync/celexpr"
)

// compiledSpec is a Receiver's CEL expressions, compiled once for a
// call or a reconcile.
type compiledSpec struct {
	// top is spec.resourceFilter, and per each of spec.resources[].filter,
	// aligned with spec.resources; nil where unset.
	top *celexpr.Expression
	per []*celexpr.Expression
	// oidc are spec.oidcProviders' variables and validations, aligned
	// with spec.oidcProviders.
	oidc []oidcProgram
}

// compileSpec compiles every CEL expression of a Receiver's spec: the
// resource filters and the OIDC providers' variables and validations. A
// Receiver with one that does not compile is not Ready, and its calls are
// refused. The error names the expression's field.
func compileSpec(cache *celexpr.Cache, rcv *notificationv1.Receiver) (*compiledSpec, error) {
	top, per, err := compileFilters(cache, rcv)
	if err != nil {
		return nil, err
	}
	oidc, err := compileOIDC(cache, rcv.Spec.OIDCProviders)
	if err != nil {
		return nil, err
	}
	return &compiledSpec{top: top, per: per, oidc: oidc}, nil
}

// compileFilters compiles a Receiver's spec.resourceFilter and each of
// spec.resources[].filter, as Flux does: boolean expressions over res and
// req, and for generic-oidc claims, which is undeclared for the other
// types. Each is nil when unset.
func compileFilters(cache *celexpr.Cache, rcv *notificationv1.Receiver) (top *celexpr.Expression, per []*celexpr.Expression, err error) {
	vars := []string{"res", "req"}
	if rcv.Spec.Type == notificationv1.GenericOIDCReceiver {
		vars = append(vars, "claims")
	}
	if rcv.Spec.ResourceFilter != "" {
		if top, err = cache.Bool(rcv.Spec.ResourceFilter, vars...); err != nil {
			return nil, nil, fmt.Errorf("spec.resourceFilter: %w", err)
		}
	}
	per = make([]*celexpr.Expression, len(rcv.Spec.Resources))
	for i, ref := range rcv.Spec.Resources {
		if ref.Filter == "" {
			continue
		}
		if per[i], err = cache.Bool(ref.Filter, vars...); err != nil {
			return nil, nil, fmt.Errorf("spec.resources[%d].filter: %w", i, err)
		}
	}
	return top, per, nil
}

// resourceFilter decides which resources a verified call asks to reconcile.
type resourceFilter struct {
	// top is spec.resourceFilter, and per each resource's filter, aligned
	// with spec.resources; nil where unset. A resource must make both
	// true, as in Flux.
	top *celexpr.Expression
	per []*celexpr.Expression
	// req is the call's body as the expressions see it.
	req map[string]any
	// claims are a generic-oidc call's verified claims, nil otherwise.
	claims map[string]any
}

// newResourceFilter is the filter of a verified call of a Receiver of
// type typ whose spec compiled to spec, nil when the Receiver has no
// filter. As in Flux, req is the body when it is JSON (by its
// Content-Type) and an empty map otherwise; for a gcr Receiver it is the
// registry notification inside the Pub/Sub message, which Flux hands on
// in place of the push and which the verdict holds decoded. A
// generic-oidc call's verified claims are claims.
func newResourceFilter(spec *compiledSpec, typ string, header http.Header, body []byte, v Verdict) (*resourceFilter, error) {
	if spec.top == nil && !slices.ContainsFunc(spec.per, func(e *celexpr.Expression) bool { return e != nil }) {
		return nil, nil
	}
	claims := v.Claims
	if typ == notificationv1.GenericOIDCReceiver && claims == nil {
		claims = map[string]any{}
	}
	f := &resourceFilter{top: spec.top, per: spec.per, req: map[string]any{}, claims: claims}
	switch {
	case !isJSON(header):
	case v.Request != nil:
		f.req = v.Request
	default:
		if err := json.Unmarshal(body, &f.req); err != nil {
			return nil, fmt.Errorf("the JSON body is not an object, which the resource filters read as req: %w", err)
		}
	}
	return f, nil
}

// applies reports whether a filter reads the resources of
// spec.resources[i]: when none does, they need not be read for it.
func (f *resourceFilter) applies(i int) bool {
	return f != nil && (f.top != nil || f.per[i] != nil)
}

// keep evaluates the filters on obj, matched by spec.resources[i], read
// as metadata: its apiVersion, kind and metadata are res.
func (f *resourceFilter) keep(ctx context.Context, i int, obj client.Object) (bool, error) {
	if !f.applies(i) {
		return true, nil
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return false, fmt.Errorf("read %s for the resource filters: %w", client.ObjectKeyFromObject(obj), err)
	}
	var res map[string]any
	if err := json.Unmarshal(raw, &res); err != nil {
		return false, fmt.Errorf("read %s for the resource filters: %w", client.ObjectKeyFromObject(obj), err)
	}
	vars := map[string]any{"res": res, "req": f.req}
	if f.claims != nil {
		vars["claims"] = f.claims
	}
	if f.top != nil {
		ok, err := f.top.Eval(ctx, vars)
		if err != nil || !ok {
			return false, wrapField("spec.resourceFilter", err)
		}
	}
	if f.per[i] != nil {
		ok, err := f.per[i].Eval(ctx, vars)
		if err != nil || !ok {
			return false, wrapField(fmt.Sprintf("spec.resources[%d].filter", i), err)
		}
	}
	return true, nil
}

// wrapField names the field of an evaluation error; nil stays nil.
func wrapField(field string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", field, err)
}

// isJSON reports whether one of the Content-Type header's media types is
// application/json, as Flux reads it.
func isJSON(header http.Header) bool {
	for v := range strings.SplitSeq(header.Get("Content-Type"), ",") {
		t, _, err := mime.ParseMediaType(v)
		if err != nil {
			return false
		}
		if t == "application/json" {
			return true
		}
	}
	return false
}
