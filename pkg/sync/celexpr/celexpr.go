// Package celexpr compiles and evaluates the CEL expressions of the sync
// core's specs: a Kustomization's or a HelmRelease's healthCheckExprs and
// dependsOn[].readyExpr, and a Receiver's resourceFilter. It keeps the
// environment of Flux's fluxcd/pkg/runtime/cel (optional types, the
// strings, sets and encoders extensions, cross-type numeric comparisons,
// UTC as the default time zone), so an expression written for Flux means
// the same here.
//
// The expressions come from users, and are evaluated inside the
// controllers: every evaluation is bounded by a cost limit and a timeout,
// so a hostile expression fails instead of holding a worker.
package celexpr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
)

// Limits of an expression.
const (
	// MaxLength bounds an expression, in code points: a health check or a
	// filter is a line or two.
	MaxLength = 16 << 10
	// CostLimit bounds the work of one evaluation, in CEL's cost units;
	// it is Kubernetes' per-call limit of a validation rule.
	CostLimit = 1_000_000
	// Timeout bounds one evaluation's wall time.
	Timeout = time.Second
)

// maxCached bounds the cache: specs hold a few expressions each, and an
// edited expression leaves its old program behind.
const maxCached = 1024

// Expression is a compiled expression; it is safe for concurrent use.
type Expression struct {
	src string
	prg cel.Program
}

// String is the expression's source.
func (e *Expression) String() string { return e.src }

// Cache compiles each expression once and keeps the program for the next
// reconcile. The zero value is ready to use; a Cache must not be copied.
type Cache struct {
	mu       sync.Mutex
	programs map[cacheKey]*Expression
}

// cacheKey is an expression and how it was compiled: its variables, or
// none for an expression over an object's fields, and whether its result
// may be of any type.
type cacheKey struct {
	src  string
	vars string
	any  bool
}

// Object compiles an expression evaluated against an object, whose
// top-level fields (apiVersion, kind, metadata, spec, status) are its
// variables, as in Flux's health checks. It is parsed but not type-checked:
// a custom resource need not have the usual fields, so a missing one is
// an evaluation error, not a compile error.
func (c *Cache) Object(src string) (*Expression, error) {
	return c.compile(cacheKey{src: src}, func(env *cel.Env) (*cel.Ast, error) {
		ast, issues := env.Parse(src)
		if issues != nil && issues.Err() != nil {
			return nil, fmt.Errorf("invalid CEL expression: %w", issues.Err())
		}
		return ast, nil
	})
}

// Bool compiles an expression over vars, each a JSON object (a map from
// field names to values), and checks that it gives a boolean, as Flux's
// readyExpr and resourceFilter are compiled. A result the checker can only
// type at run time (dyn) is checked at each evaluation.
func (c *Cache) Bool(src string, vars ...string) (*Expression, error) {
	return c.compile(cacheKey{src: src, vars: strings.Join(vars, ",")}, func(env *cel.Env) (*cel.Ast, error) {
		ast, issues := env.Compile(src)
		if issues != nil && issues.Err() != nil {
			return nil, fmt.Errorf("invalid CEL expression: %w", issues.Err())
		}
		if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
			return nil, fmt.Errorf("invalid CEL expression: it gives %s, not bool", t)
		}
		return ast, nil
	}, vars...)
}

// Any compiles an expression over vars, each a JSON object, whose result
// may be of any type, as Flux compiles a generic-oidc provider's
// variables: the value is handed on to other expressions.
func (c *Cache) Any(src string, vars ...string) (*Expression, error) {
	return c.compile(cacheKey{src: src, vars: strings.Join(vars, ","), any: true}, func(env *cel.Env) (*cel.Ast, error) {
		ast, issues := env.Compile(src)
		if issues != nil && issues.Err() != nil {
			return nil, fmt.Errorf("invalid CEL expression: %w", issues.Err())
		}
		return ast, nil
	}, vars...)
}

// compile returns the cached program of key, or builds it with parse in an
// environment declaring vars.
func (c *Cache) compile(key cacheKey, parse func(*cel.Env) (*cel.Ast, error), vars ...string) (*Expression, error) {
	c.mu.Lock()
	e, ok := c.programs[key]
	c.mu.Unlock()
	if ok {
		return e, nil
	}
	if strings.TrimSpace(key.src) == "" {
		return nil, errors.New("invalid CEL expression: it is empty")
	}
	env, err := newEnv(vars)
	if err != nil {
		return nil, err
	}
	ast, err := parse(env)
	if err != nil {
		return nil, err
	}
	prg, err := env.Program(ast,
		cel.EvalOptions(cel.OptOptimize),
		cel.CostLimit(CostLimit),
		// Kubernetes' check frequency: a comprehension looks at the
		// context every 100 iterations, so the timeout stops it.
		cel.InterruptCheckFrequency(100),
	)
	if err != nil {
		return nil, fmt.Errorf("invalid CEL expression: %w", err)
	}
	e = &Expression{src: key.src, prg: prg}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.programs == nil || len(c.programs) >= maxCached {
		c.programs = map[cacheKey]*Expression{}
	}
	c.programs[key] = e
	return e, nil
}

// newEnv is Flux's environment, with vars declared as JSON objects.
func newEnv(vars []string) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		cel.ParserExpressionSizeLimit(MaxLength),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
	}
	for _, v := range vars {
		opts = append(opts, cel.Variable(v, cel.MapType(cel.StringType, cel.DynType)))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("create the CEL environment: %w", err)
	}
	return env, nil
}

// Eval evaluates the expression with the variables of vars and returns
// its boolean result. A missing field, a result that is not a boolean, the
// cost limit and the timeout are errors; their messages do not repeat the
// expression, which the caller names by its field.
func (e *Expression) Eval(ctx context.Context, vars map[string]any) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	val, _, err := e.prg.ContextEval(ctx, vars)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("stopped (an evaluation may take %s): %w", Timeout, err)
		}
		return false, err
	}
	b, ok := val.(types.Bool)
	if !ok {
		return false, fmt.Errorf("it gave %s, not bool", val.Type())
	}
	return bool(b), nil
}

// EvalAny evaluates the expression with the variables of vars and returns
// its result as CEL holds it, ready to be a variable of another
// expression. The cost limit and the timeout are errors, as in Eval.
func (e *Expression) EvalAny(ctx context.Context, vars map[string]any) (ref.Val, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	val, _, err := e.prg.ContextEval(ctx, vars)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("stopped (an evaluation may take %s): %w", Timeout, err)
		}
		return nil, err
	}
	return val, nil
}
