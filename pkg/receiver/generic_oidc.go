package receiver

import (
	"context"
	"fmt"
	"slices"
	"strings"

	notificationv1 "sluice.dev/sluice/api/notification/v1"
	"sluice.dev/sluice/pkg/sync/celexpr"
)

// genericOIDCSender checks a call's "Authorization: Bearer <ID token>"
// against the Receiver's spec.oidcProviders, as Flux's generic-oidc does:
// the provider whose issuerURL is the token's iss verifies its signature
// (with the keys its discovery names), audience and times, then its
// variables are evaluated in order and every validation must be true.
// The token's claims go on to the resource filters as claims.
type genericOIDCSender struct {
	issuers *oidcIssuers
}

func (s genericOIDCSender) verify(ctx context.Context, c *Call) (Verdict, error) {
	raw, ok := strings.CutPrefix(c.Header.Get("Authorization"), "Bearer ")
	if raw = strings.TrimSpace(raw); !ok || raw == "" {
		return Verdict{}, fmt.Errorf("header Authorization must be Bearer <ID token>: %w", ErrUnauthorized)
	}
	if s.issuers == nil {
		return Verdict{}, fmt.Errorf("no source of the issuers' signing keys: %w", errUnavailable)
	}
	if len(c.oidc) != len(c.OIDCProviders) {
		// The handler compiles the spec before it verifies a call.
		return Verdict{}, fmt.Errorf("the expressions of spec.oidcProviders are not compiled: %w", errUnavailable)
	}
	tok, iss, err := parseBearer(raw, oidcAlgorithms)
	if err != nil {
		return Verdict{}, fmt.Errorf("header Authorization: %w: %w", err, ErrUnauthorized)
	}
	if iss == "" {
		return Verdict{}, fmt.Errorf("header Authorization: the bearer token has no iss claim: %w", ErrUnauthorized)
	}
	i := slices.IndexFunc(c.OIDCProviders, func(p notificationv1.OIDCProvider) bool { return p.IssuerURL == iss })
	if i < 0 {
		return Verdict{}, fmt.Errorf("header Authorization: no spec.oidcProviders entry has the token's issuer %q: %w", iss, ErrUnauthorized)
	}
	provider := &c.OIDCProviders[i]
	claims, err := s.issuers.verifyOIDCToken(ctx, tok, provider.IssuerURL, provider.GetAudience(), c.Now)
	if err != nil {
		return Verdict{}, fmt.Errorf("header Authorization: %w", err)
	}
	if err := c.oidc[i].check(ctx, i, claims); err != nil {
		return Verdict{}, err
	}
	return Verdict{Trigger: true, Claims: claims}, nil
}

// oidcProgram is one provider's compiled variables and validations.
type oidcProgram struct {
	variables   []oidcVariable
	validations []oidcValidation
}

type oidcVariable struct {
	name string
	expr *celexpr.Expression
}

type oidcValidation struct {
	expr    *celexpr.Expression
	message string
}

// compileOIDC compiles the variables and validations of every provider,
// as Flux does: over claims and vars, the validations to booleans. An
// error names the expression's field.
func compileOIDC(cache *celexpr.Cache, providers []notificationv1.OIDCProvider) ([]oidcProgram, error) {
	out := make([]oidcProgram, len(providers))
	for i, p := range providers {
		for j, v := range p.Variables {
			e, err := cache.Any(v.Expression, "claims", "vars")
			if err != nil {
				return nil, fmt.Errorf("spec.oidcProviders[%d].variables[%d].expression: %w", i, j, err)
			}
			out[i].variables = append(out[i].variables, oidcVariable{name: v.Name, expr: e})
		}
		for j, v := range p.Validations {
			e, err := cache.Bool(v.Expression, "claims", "vars")
			if err != nil {
				return nil, fmt.Errorf("spec.oidcProviders[%d].validations[%d].expression: %w", i, j, err)
			}
			out[i].validations = append(out[i].validations, oidcValidation{expr: e, message: v.Message})
		}
	}
	return out, nil
}

// check evaluates the variables in order, each seeing those before it,
// then every validation. The messages of all the false ones are what the
// caller is told. A token without a claim an expression reads fails
// that expression: it does not show what the validations ask for.
func (p oidcProgram) check(ctx context.Context, i int, claims map[string]any) error {
	vars := map[string]any{}
	data := map[string]any{"claims": claims, "vars": vars}
	for j, v := range p.variables {
		val, err := v.expr.EvalAny(ctx, data)
		if err != nil {
			return fmt.Errorf("spec.oidcProviders[%d].variables[%d] (%s): %w: %w", i, j, v.name, err, ErrUnauthorized)
		}
		vars[v.name] = val
	}
	var failed []string
	for j, v := range p.validations {
		ok, err := v.expr.Eval(ctx, data)
		if err != nil {
			return fmt.Errorf("spec.oidcProviders[%d].validations[%d] (%s): %w: %w", i, j, v.message, err, ErrUnauthorized)
		}
		if !ok {
			failed = append(failed, v.message)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("token validation failed: %s: %w", strings.Join(failed, "; "), ErrUnauthorized)
	}
	return nil
}
