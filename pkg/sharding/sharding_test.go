package sharding

import (
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestSelectors(t *testing.T) {
	tests := []struct {
		name     string
		selector string
		// canonical, key and lease are the selector's String, Key and
		// LeaseName("sluice-leader-election"); lease "hash" is the id
		// with a hash of the canonical form.
		canonical, key, lease string
		matches               []map[string]string
		misses                []map[string]string
		copied                []string
		err                   string
	}{
		{
			name:  "an empty selector owns every object and keeps the unsharded lease",
			lease: "sluice-leader-election", matches: []map[string]string{nil, {KeyLabel: "a"}},
			copied: []string{KeyLabel},
		},
		{
			name: "a shard's selector names the shard and its lease", selector: "sharding.sluice.dev/key=a",
			canonical: "sharding.sluice.dev/key=a", key: "a", lease: "sluice-leader-election-a",
			matches: []map[string]string{{KeyLabel: "a", "team": "x"}}, misses: []map[string]string{nil, {KeyLabel: "b"}},
			copied: []string{KeyLabel},
		},
		{
			name: "== and in (a) are the same shard, spelled one way", selector: "sharding.sluice.dev/key in (a)",
			canonical: "sharding.sluice.dev/key=a", key: "a", lease: "sluice-leader-election-a",
			matches: []map[string]string{{KeyLabel: "a"}}, copied: []string{KeyLabel},
		},
		{
			name: "the unsharded main replica owns what names no shard", selector: Unsharded,
			canonical: "!sharding.sluice.dev/key", lease: "hash",
			matches: []map[string]string{nil, {"team": "x"}}, misses: []map[string]string{{KeyLabel: "a"}},
			copied: []string{KeyLabel},
		},
		{
			name: "another selector copies the labels it reads to a HelmRelease's chart", selector: "team=web,tier!=db",
			canonical: "team=web,tier!=db", lease: "hash",
			matches: []map[string]string{{"team": "web"}}, misses: []map[string]string{{"team": "web", "tier": "db"}},
			copied: []string{KeyLabel, "team", "tier"},
		},
		{
			name: "a shard key that is no DNS label gets a hashed lease name", selector: "sharding.sluice.dev/key=Team_A",
			canonical: "sharding.sluice.dev/key=Team_A", key: "Team_A", lease: "hash",
			matches: []map[string]string{{KeyLabel: "Team_A"}}, copied: []string{KeyLabel},
		},
		{name: "a malformed selector is refused", selector: "team in (web", err: `label selector "team in (web"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.selector)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != tt.canonical || s.Key() != tt.key {
				t.Errorf("canonical %q key %q, want %q %q", s.String(), s.Key(), tt.canonical, tt.key)
			}
			lease := s.LeaseName("sluice-leader-election")
			if tt.lease == "hash" {
				if !strings.HasPrefix(lease, "sluice-leader-election-") || len(lease) != len("sluice-leader-election-")+10 {
					t.Errorf("lease %q, want the id and a 10-digit hash", lease)
				}
			} else if lease != tt.lease {
				t.Errorf("lease %q, want %q", lease, tt.lease)
			}
			for _, l := range tt.matches {
				if !s.Matches(l) {
					t.Errorf("%v does not match %v", s, l)
				}
			}
			for _, l := range tt.misses {
				if s.Matches(l) {
					t.Errorf("%v matches %v", s, l)
				}
			}
			if got := s.CopiedLabels(); !slices.Equal(got, tt.copied) {
				t.Errorf("copied labels %v, want %v", got, tt.copied)
			}
			if (s.Labels() == nil) != s.Empty() {
				t.Errorf("Labels() is %v for an empty selector: %v", s.Labels(), s.Empty())
			}
		})
	}
}

func TestDistinctSelectorsHaveDistinctLeases(t *testing.T) {
	seen := map[string]string{}
	for _, text := range []string{"", Unsharded, "sharding.sluice.dev/key=a", "sharding.sluice.dev/key=b", "team=web", "team=db"} {
		s, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		name := s.LeaseName("sluice-leader-election")
		if other, ok := seen[name]; ok {
			t.Errorf("%q and %q share the lease %s", text, other, name)
		}
		seen[name] = text
	}
}

func TestForKey(t *testing.T) {
	tests := []struct {
		name, key, want, err string
	}{
		{name: "a key selects the objects labelled with it", key: "shard1", want: "sharding.sluice.dev/key=shard1"},
		{name: "an empty key is refused", key: "", err: "the shard key is empty"},
		{name: "a key that is no label value is refused", key: "a b", err: `shard key "a b" is not a label value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ForKey(tt.key)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil || s.String() != tt.want {
				t.Fatalf("got %q, %v; want %q", s, err, tt.want)
			}
		})
	}
}

func TestFromLease(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	lease := func(annotations map[string]string, holder string, renewed time.Duration) *coordinationv1.Lease {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "sluice-leader-election-a", Namespace: "sluice-system", Annotations: annotations}}
		if holder != "" {
			l.Spec = coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(holder),
				LeaseDurationSeconds: ptr.To[int32](15),
				RenewTime:            &metav1.MicroTime{Time: now.Add(-renewed)},
			}
		}
		return l
	}
	shardA := map[string]string{SelectorAnnotation: "sharding.sluice.dev/key=a"}
	tests := []struct {
		name     string
		lease    *coordinationv1.Lease
		ok, live bool
		owns     map[string]map[string]string // namespace: labels
		disowns  map[string]map[string]string
		err      string
	}{
		{name: "a lease with no selector annotation is no replica's", lease: lease(nil, "pod-1", 0)},
		{
			name: "a lease renewed within its duration is a live replica", lease: lease(shardA, "pod-1", 14*time.Second), ok: true, live: true,
			owns: map[string]map[string]string{"apps": {KeyLabel: "a"}}, disowns: map[string]map[string]string{"apps": {KeyLabel: "b"}},
		},
		{name: "a lease not renewed for its duration is a stopped replica", lease: lease(shardA, "pod-1", 16*time.Second), ok: true},
		{name: "a lease released on shutdown is a stopped replica", lease: lease(shardA, "", 0), ok: true},
		{
			name:  "a replica limited to one namespace owns only objects there",
			lease: lease(map[string]string{SelectorAnnotation: "", NamespaceAnnotation: "apps"}, "pod-1", 0), ok: true, live: true,
			owns: map[string]map[string]string{"apps": nil}, disowns: map[string]map[string]string{"other": nil},
		},
		{name: "a selector annotation that does not parse is an error", lease: lease(map[string]string{SelectorAnnotation: "a in ("}, "pod-1", 0), ok: true, err: "annotation sharding.sluice.dev/selector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, live, ok, err := FromLease(tt.lease, now)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error with %q", err, tt.err)
				}
				return
			}
			if err != nil || ok != tt.ok || live != tt.live {
				t.Fatalf("ok %v live %v err %v, want ok %v live %v", ok, live, err, tt.ok, tt.live)
			}
			for ns, l := range tt.owns {
				if !r.Owns(ns, l) {
					t.Errorf("%+v does not own %s %v", r, ns, l)
				}
			}
			for ns, l := range tt.disowns {
				if r.Owns(ns, l) {
					t.Errorf("%+v owns %s %v", r, ns, l)
				}
			}
		})
	}
}
