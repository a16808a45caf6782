package v1beta1_test

import (
	"strings"
	"testing"

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
