package router

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// SpecError is a router failure that only a change by the Canary's author
// fixes: a field that is missing, or names an object that does not exist
// or that the router cannot use. The engine reports it in the Canary's
// Ready condition and a Warning Event instead of retrying it as a passing
// fault, which would only reach the log.
type SpecError struct {
	// Field is the path of the Canary's field to fix, spec.routeRef say.
	Field string
	// Err says what is wrong with it.
	Err error
}

func (e *SpecError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *SpecError) Unwrap() error { return e.Err }

// specError is a SpecError of a field with a formatted message.
func specError(field, format string, args ...any) error {
	return &SpecError{Field: field, Err: fmt.Errorf(format, args...)}
}

// missingRef is the error of reading the object a field names: a
// SpecError when it does not exist, which the user must fix, and the
// error with context otherwise, which a retry may fix.
func missingRef(field, what string, err error) error {
	if apierrors.IsNotFound(err) {
		return specError(field, "%s not found", what)
	}
	return fmt.Errorf("%s: get %s: %w", field, what, err)
}
