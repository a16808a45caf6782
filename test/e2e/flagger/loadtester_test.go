package flagger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// loadTesterHost is the base URL the manifests give flagger-loadtester,
// as Flagger's docs and tests install it (Service flagger-loadtester in
// namespace test).
const loadTesterHost = "http://flagger-loadtester.test"

// loadTester is a loopback stand-in for flagger-loadtester that answers
// its webhook API as flagger-loadtester's pkg/loadtester/server.go does:
//
//   - /gate/approve always answers 200 and /gate/halt always 403;
//   - /gate/check answers 200 while the Canary's gate is open and 403
//     while it is closed, which it is until /gate/open opens it;
//     /gate/open and /gate/close take {"name", "namespace"} and answer
//     202;
//   - /rollback/check, /rollback/open and /rollback/close do the same
//     for a second, rollback gate;
//   - / takes a task in the payload's metadata and answers 400 without
//     one, 202 for a "cmd" task (the default), which flagger-loadtester
//     queues in the background, and 200 for a blocking "bash" task.
//
// It records every call, and runs no command: there is no cluster
// network here for hey or curl to reach, so every bash task is reported
// as passed.
type loadTester struct {
	*httptest.Server
	t testing.TB

	mu sync.Mutex
	// gates holds each gate's state by flagger-loadtester's key:
	// name.namespace for the gate, rollback.name.namespace for rollback.
	gates map[string]bool
	calls []loadTesterCall
}

// loadTesterCall is a call the load tester received.
type loadTesterCall struct {
	Path    string
	Payload sluicev1beta1.CanaryWebhookPayload
	// Status is what the load tester answered.
	Status int
}

func newLoadTester(t testing.TB) *loadTester {
	l := &loadTester{t: t, gates: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/gate/approve", l.fixed(http.StatusOK))
	mux.HandleFunc("/gate/halt", l.fixed(http.StatusForbidden))
	mux.HandleFunc("/gate/check", l.check(""))
	mux.HandleFunc("/gate/open", l.set("", true))
	mux.HandleFunc("/gate/close", l.set("", false))
	mux.HandleFunc("/rollback/check", l.check("rollback."))
	mux.HandleFunc("/rollback/open", l.set("rollback.", true))
	mux.HandleFunc("/rollback/close", l.set("rollback.", false))
	mux.HandleFunc("/", l.task)
	l.Server = httptest.NewServer(mux)
	t.Cleanup(l.Close)
	return l
}

// payload reads a webhook payload, answering 400 to one that does not
// decode, as flagger-loadtester does.
func (l *loadTester) payload(w http.ResponseWriter, r *http.Request) (sluicev1beta1.CanaryWebhookPayload, bool) {
	var p sluicev1beta1.CanaryWebhookPayload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		l.record(r.URL.Path, p, http.StatusBadRequest)
		w.WriteHeader(http.StatusBadRequest)
		return p, false
	}
	return p, true
}

func (l *loadTester) record(path string, p sluicev1beta1.CanaryWebhookPayload, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, loadTesterCall{Path: path, Payload: p, Status: status})
}

func (l *loadTester) fixed(status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := l.payload(w, r)
		l.record(r.URL.Path, p, status)
		w.WriteHeader(status)
	}
}

// check answers whether the Canary's gate of the kind prefix is open.
func (l *loadTester) check(prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := l.payload(w, r)
		if !ok {
			return
		}
		l.mu.Lock()
		open := l.gates[prefix+p.Name+"."+p.Namespace]
		l.mu.Unlock()
		status, body := http.StatusForbidden, "Forbidden"
		if open {
			status, body = http.StatusOK, "Approved"
		}
		l.record(r.URL.Path, p, status)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// set opens or closes the Canary's gate of the kind prefix.
func (l *loadTester) set(prefix string, open bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := l.payload(w, r)
		if !ok {
			return
		}
		l.mu.Lock()
		l.gates[prefix+p.Name+"."+p.Namespace] = open
		l.mu.Unlock()
		l.record(r.URL.Path, p, http.StatusAccepted)
		w.WriteHeader(http.StatusAccepted)
	}
}

// task takes a task from the payload's metadata.
func (l *loadTester) task(w http.ResponseWriter, r *http.Request) {
	p, ok := l.payload(w, r)
	if !ok {
		return
	}
	var status int
	switch typ := p.Metadata["type"]; {
	case len(p.Metadata) == 0:
		// "metadata not found in payload"
		status = http.StatusBadRequest
	case typ == "bash":
		status = http.StatusOK
	case (typ == "" || typ == "cmd") && p.Metadata["cmd"] != "":
		status = http.StatusAccepted
	default:
		status = http.StatusBadRequest
	}
	l.record(r.URL.Path, p, status)
	w.WriteHeader(status)
}

// post opens or closes a gate as a user does, with curl from the load
// tester's pod: path is /gate/open, /gate/close, /rollback/open or
// /rollback/close.
func (l *loadTester) post(path, namespace, name string) {
	l.t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "namespace": namespace})
	resp, err := http.Post(l.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		l.t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		l.t.Fatalf("POST %s answered %s", path, resp.Status)
	}
}

// received returns the calls made to path, in order.
func (l *loadTester) received(path string) []loadTesterCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loadTesterCall
	for _, c := range l.calls {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

// tasks returns the commands of the tasks posted to / with the given
// metadata type ("cmd" also counts tasks with no type).
func (l *loadTester) tasks(typ string) []string {
	var out []string
	for _, c := range l.received("/") {
		t := c.Payload.Metadata["type"]
		if t == typ || (typ == "cmd" && t == "") {
			out = append(out, c.Payload.Metadata["cmd"])
		}
	}
	return out
}

// paths lists the paths called, for failure messages.
func (l *loadTester) paths() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, c := range l.calls {
		out = append(out, fmt.Sprintf("%s→%d", c.Path, c.Status))
	}
	return fmt.Sprint(slices.Compact(out))
}
