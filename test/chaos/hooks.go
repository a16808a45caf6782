package chaos

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// hangLimit is how long a hung call hangs: longer than any hook timeout
// of the chaos run and the failover test.
const hangLimit = 30 * time.Second

// Call is one webhook call as the server received it.
type Call struct {
	At       time.Time
	Type     sluicev1beta1.HookType
	Canary   client.ObjectKey
	Phase    sluicev1beta1.CanaryPhase
	Checksum string
	// Status is what the server answered; 0 when it hung until the
	// caller gave up.
	Status int
}

// Hooks serves a Canary's webhooks at URL/<hook type>, records every
// call, and answers as the Canary's current version deserves:
//   - confirm-rollout and confirm-promotion gates open (200);
//   - rollout checks pass (200) for a healthy version and fail (500) for
//     a failing one;
//   - rollback hooks ask for a rollback (200) for a failing version and
//     not (404) for a healthy one;
//   - post-rollout and other hooks answer 200.
//
// While Hang is on, the gates, rollout checks and rollback hooks hang
// past the caller's timeout: a gate that does not answer is closed, a
// rollout check that does not answer is a failed check, and a rollback
// hook that does not answer asks for nothing. A hang delays a rollout and
// costs it failed checks, within its threshold, but must not decide it.
type Hooks struct {
	URL string

	mu        sync.Mutex
	calls     []Call
	failing   map[client.ObjectKey]bool
	hangUntil time.Time
	hung      int
}

// StartHooks serves the webhooks on loopback until close is called.
func StartHooks() (h *Hooks, closeFn func()) {
	h = &Hooks{failing: map[client.ObjectKey]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	h.URL = srv.URL
	return h, srv.Close
}

// SetFailing says whether the Canary's version under release fails its
// checks.
func (h *Hooks) SetFailing(key client.ObjectKey, failing bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failing[key] = failing
}

// Hang makes every hook but post-rollout and event hooks hang, past any
// caller's timeout, for d.
func (h *Hooks) Hang(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hangUntil = time.Now().Add(d)
}

// Hung is how many calls hung.
func (h *Hooks) Hung() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hung
}

// Calls returns the calls of a Canary's hooks of one type, in order.
func (h *Hooks) Calls(key client.ObjectKey, t sluicev1beta1.HookType) []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Call
	for _, c := range h.calls {
		if c.Canary == key && c.Type == t {
			out = append(out, c)
		}
	}
	return out
}

// All returns every call.
func (h *Hooks) All() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Call(nil), h.calls...)
}

func (h *Hooks) serve(w http.ResponseWriter, r *http.Request) {
	var p sluicev1beta1.CanaryWebhookPayload
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	call := Call{
		At: time.Now(), Type: sluicev1beta1.HookType(strings.TrimPrefix(r.URL.Path, "/")),
		Canary: client.ObjectKey{Namespace: p.Namespace, Name: p.Name}, Phase: p.Phase, Checksum: p.Checksum,
	}
	h.mu.Lock()
	failing := h.failing[call.Canary]
	hangFor := time.Until(h.hangUntil)
	hangs := hangFor > 0 && call.Type != sluicev1beta1.PostRolloutHook && call.Type != sluicev1beta1.EventHook
	if hangs {
		h.hung++
	}
	h.mu.Unlock()

	if hangs {
		// Past any caller's timeout, however little of the hang is left:
		// a hung call that answered in the end would be an answer. Should
		// the caller still wait, it gets an error.
		select {
		case <-r.Context().Done():
		case <-time.After(hangLimit):
			w.WriteHeader(http.StatusGatewayTimeout)
		}
		h.record(call)
		return
	}
	status := http.StatusOK
	switch call.Type {
	case sluicev1beta1.RolloutHook:
		if failing {
			status = http.StatusInternalServerError
		}
	case sluicev1beta1.RollbackHook:
		if !failing {
			status = http.StatusNotFound
		}
	}
	call.Status = status
	h.record(call)
	w.WriteHeader(status)
}

func (h *Hooks) record(c Call) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, c)
}
