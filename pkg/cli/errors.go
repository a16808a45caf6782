package cli

import (
	"errors"
	"fmt"
	"strings"
)

// Exit codes besides 0.
const (
	// ExitFailure is the code of any error that asks for no other: a
	// failed request, a Canary that was rolled back, an object that is not
	// Ready.
	ExitFailure = 1
	// ExitTimeout means that what a command waited for did not happen
	// within --timeout.
	ExitTimeout = 2
)

// ExitError is an error that calls for a given process exit code, so that
// scripts can tell a rolled-back Canary (1) from a wait that ran out (2).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns the error that caused the exit.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the process exit code for err: 0 for nil, the code of the
// first ExitError in its chain, else ExitFailure.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	return ExitFailure
}

// NotFoundError says that a named object does not exist, with the names of
// that kind in the namespace that come close to it.
type NotFoundError struct {
	Kind        string
	Namespace   string
	Name        string
	Suggestions []string
	// Err is the API server's answer.
	Err error
}

func (e *NotFoundError) Error() string {
	msg := fmt.Sprintf("%s %q not found in namespace %q", e.Kind, e.Name, e.Namespace)
	if len(e.Suggestions) > 0 {
		msg += "; did you mean: " + strings.Join(e.Suggestions, ", ") + "?"
	}
	return msg
}

// Unwrap returns the API server's error, so that apierrors.IsNotFound
// holds.
func (e *NotFoundError) Unwrap() error { return e.Err }
