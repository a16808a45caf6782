package v1

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestHistoryKeepsOneSnapshotPerDigestAndStatusLatestFirst(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// upserts are digest:status pairs, one a minute.
		upserts []string
		want    []string // digest:status:count, latest first
	}{
		{"a first reconciliation adds a snapshot", []string{"a:ok"}, []string{"a:ok:1"}},
		{"the same digest and status is counted, not added", []string{"a:ok", "a:ok"}, []string{"a:ok:2"}},
		{"another status of the same digest is a snapshot of its own", []string{"a:ok", "a:failed"}, []string{"a:failed:1", "a:ok:1"}},
		{"a repeated older snapshot moves to the front", []string{"a:ok", "b:ok", "a:ok"}, []string{"a:ok:2", "b:ok:1"}},
		{"only the last five are kept", []string{"a:ok", "b:ok", "c:ok", "d:ok", "e:ok", "f:ok"}, []string{"f:ok:1", "e:ok:1", "d:ok:1", "c:ok:1", "b:ok:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h History
			for i, u := range tt.upserts {
				digest, status, _ := strings.Cut(u, ":")
				h.Upsert(digest, t0.Add(time.Duration(i)*time.Minute), time.Second, status, map[string]string{"revision": u})
			}
			var got []string
			for _, s := range h {
				got = append(got, fmt.Sprintf("%s:%s:%d", s.Digest, s.LastReconciledStatus, s.TotalReconciliations))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("history %v, want %v", got, tt.want)
			}
		})
	}
}
