package v1beta1_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  sluicev1beta1.Request
		err   string
	}{
		{"a full promotion reads back", `{"id":"1","action":"promote","full":true,"by":"alice"}`,
			sluicev1beta1.Request{ID: "1", Action: sluicev1beta1.RequestPromote, Full: true, By: "alice"}, ""},
		{"an unnamed request is valid", `{"id":"1","action":"pause"}`, sluicev1beta1.Request{ID: "1", Action: sluicev1beta1.RequestPause}, ""},
		{"text that is not JSON names the annotation", `promote`, sluicev1beta1.Request{}, "metadata.annotations[sluice.dev/request]: not a request"},
		{"an unknown action lists the known ones", `{"id":"1","action":"ship"}`, sluicev1beta1.Request{}, `unknown action "ship": want promote, abort`},
		{"a request without an id is refused", `{"action":"abort"}`, sluicev1beta1.Request{}, "id is required"},
		{"full on anything but promote is refused", `{"id":"1","action":"abort","full":true}`, sluicev1beta1.Request{}, "full applies to promote only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sluicev1beta1.ParseRequest(tt.value)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			value, err := got.Annotation()
			if err != nil {
				t.Fatal(err)
			}
			if again, err := sluicev1beta1.ParseRequest(value); err != nil || again != got {
				t.Fatalf("the annotation %s reads back as %+v, %v", value, again, err)
			}
		})
	}
}

// FuzzParseRequest reads fuzzed annotation values, and writes and reads
// back fuzzed requests as sluicectl does. A value that is accepted is a
// valid request (a known action, an id, full only with promote) and reads
// back the same from its own annotation; a request is accepted exactly
// when it is valid, and reads back as it was written.
func FuzzParseRequest(f *testing.F) {
	f.Add(`{"id":"1","action":"promote","full":true,"by":"alice"}`, "1", "promote", true, "alice")
	f.Add(`{"id":"1","action":"abort","full":true}`, "2026-11-23T12:00:00Z", "abort", false, "")
	f.Add(`{"ID":"x","Action":"pause","action":"resume"}`, "", "retry", false, "bob")
	f.Add(`promote`, "r", "ship", false, "\xff")
	f.Add(`null`, "r", "pause", true, "")
	f.Fuzz(func(t *testing.T, value, id, action string, full bool, by string) {
		if got, err := sluicev1beta1.ParseRequest(value); err == nil {
			checkValidRequest(t, got)
			again, err := got.Annotation()
			if err != nil {
				t.Fatalf("the accepted request %+v does not encode: %v", got, err)
			}
			if back, err := sluicev1beta1.ParseRequest(again); err != nil || back != got {
				t.Fatalf("%q was read as %+v, whose annotation %s reads back as %+v, %v", value, got, again, back, err)
			}
		} else if !strings.HasPrefix(err.Error(), "metadata.annotations[sluice.dev/request]: ") {
			t.Fatalf("the error %q does not name the annotation", err)
		}

		r := sluicev1beta1.Request{ID: id, Action: sluicev1beta1.RequestAction(action), Full: full, By: by}
		written, err := r.Annotation()
		if err != nil {
			t.Fatalf("request %+v does not encode: %v", r, err)
		}
		got, err := sluicev1beta1.ParseRequest(written)
		known := map[string]bool{"promote": true, "abort": true, "retry": true, "pause": true, "resume": true}
		valid := known[action] && id != "" && (!full || action == "promote")
		if valid != (err == nil) {
			t.Fatalf("request %+v: valid %v, but reading %s gave %+v, %v", r, valid, written, got, err)
		}
		// JSON carries text: invalid UTF-8 comes back as U+FFFD, as it
		// would from the API server.
		if err == nil && utf8.ValidString(id) && utf8.ValidString(by) && got != r {
			t.Fatalf("request %+v reads back from %s as %+v", r, written, got)
		}
	})
}

func checkValidRequest(t *testing.T, r sluicev1beta1.Request) {
	t.Helper()
	switch r.Action {
	case sluicev1beta1.RequestPromote, sluicev1beta1.RequestAbort, sluicev1beta1.RequestRetry, sluicev1beta1.RequestPause, sluicev1beta1.RequestResume:
	default:
		t.Fatalf("accepted a request with action %q", r.Action)
	}
	if r.ID == "" {
		t.Fatalf("accepted a request without an id: %+v", r)
	}
	if r.Full && r.Action != sluicev1beta1.RequestPromote {
		t.Fatalf("accepted full with %s", r.Action)
	}
}
