package receiver

import "context"

// genericSender trusts any call to its secret path: the path, derived
// from the token, is the proof.
type genericSender struct{}

func (genericSender) verify(context.Context, *Call) (Verdict, error) {
	return Verdict{Trigger: true}, nil
}
