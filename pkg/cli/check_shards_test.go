package cli_test

import (
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/pkg/cli"
	"sluice.dev/sluice/pkg/sharding"
)

// replicaLease is a lease as an operator replica writes it: its selector
// recorded, held by holder and renewed ago (no holder: released).
type replicaLease struct {
	name, selector, holder string
	ago                    time.Duration
}

func (l replicaLease) create(t *testing.T, ns string) {
	t.Helper()
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: ns, Annotations: map[string]string{sharding.SelectorAnnotation: l.selector}}}
	if l.holder != "" {
		lease.Spec = coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(l.holder),
			LeaseDurationSeconds: ptr.To[int32](15),
			RenewTime:            &metav1.MicroTime{Time: time.Now().Add(-l.ago)},
		}
	}
	create(t, lease)
}

// TestCheckNamesTheObjectsNoRunningShardOwns runs check against leases as
// the replicas write them and objects labelled for shards, some of which
// run. Each case has its own operator namespace, and its own shard names,
// so that the objects of the others do not count.
func TestCheckNamesTheObjectsNoRunningShardOwns(t *testing.T) {
	apps := newNamespace(t)
	tests := []struct {
		name string
		// leases are created in the operator namespace; objects maps the
		// names of GitRepositories in apps to their shard key ("" for
		// none). "NS" in a key, lease or line is the operator namespace.
		leases  []replicaLease
		objects map[string]string
		code    int
		want    []string
		notWant []string
		err     string
	}{
		{
			name:    "one replica that owns every object passes",
			leases:  []replicaLease{{name: "sluice-leader-election", holder: "pod-all"}},
			objects: map[string]string{"every-a": "a-NS", "every-none": ""},
			want: []string{
				"✔ replica pod-all owns every object (Lease NS/sluice-leader-election)",
				"✔ each of the ",
				"✔ all checks passed",
			},
		},
		{
			name: "an object of a shard that does not run fails, naming it and its shard",
			leases: []replicaLease{
				{name: "sluice-leader-election-a", selector: "sharding.sluice.dev/key=a-NS", holder: "pod-a"},
				{name: "sluice-leader-election-main", selector: sharding.Unsharded, holder: "pod-main"},
			},
			objects: map[string]string{"stopped-a": "a-NS", "stopped-c": "c-NS", "stopped-none": ""},
			code:    cli.ExitFailure,
			want: []string{
				"✔ replica pod-a owns shard a-NS (sharding.sluice.dev/key=a-NS) (Lease NS/sluice-leader-election-a)",
				"✔ replica pod-main owns the objects matching !sharding.sluice.dev/key (Lease NS/sluice-leader-election-main)",
				"✗ 1 object labelled sharding.sluice.dev/key=c-NS is owned by no running replica: GitRepository APPS/stopped-c\n",
			},
			notWant: []string{"APPS/stopped-a", "APPS/stopped-none", "with no sharding.sluice.dev/key label"},
			err:     "1 object labelled sharding.sluice.dev/key=c-NS is owned by no running replica",
		},
		{
			name:    "unlabelled objects with no unsharded replica fail",
			leases:  []replicaLease{{name: "sluice-leader-election-a", selector: "sharding.sluice.dev/key=a-NS", holder: "pod-a"}},
			objects: map[string]string{"shardonly-a": "a-NS", "shardonly-none": ""},
			code:    cli.ExitFailure,
			want:    []string{"with no sharding.sluice.dev/key label are owned by no running replica: "},
			notWant: []string{"APPS/shardonly-a"},
		},
		{
			name: "the objects of a shard whose lease ran out are owned by no one",
			leases: []replicaLease{
				{name: "sluice-leader-election-a", selector: "sharding.sluice.dev/key=a-NS", holder: "pod-a", ago: time.Minute},
				{name: "sluice-leader-election-b", selector: "sharding.sluice.dev/key=b-NS"},
				{name: "sluice-leader-election-main", selector: sharding.Unsharded, holder: "pod-main"},
			},
			objects: map[string]string{"expired-a": "a-NS", "released-b": "b-NS"},
			code:    cli.ExitFailure,
			want: []string{
				"✗ 1 object labelled sharding.sluice.dev/key=a-NS is owned by no running replica: GitRepository APPS/expired-a\n",
				"✗ 1 object labelled sharding.sluice.dev/key=b-NS is owned by no running replica: GitRepository APPS/released-b\n",
			},
			notWant: []string{"pod-a owns"},
		},
		{
			name: "an object two running replicas own fails, naming their leases",
			leases: []replicaLease{
				{name: "sluice-leader-election", holder: "pod-all"},
				{name: "sluice-leader-election-a", selector: "sharding.sluice.dev/key=a-NS", holder: "pod-a"},
			},
			objects: map[string]string{"twice-a": "a-NS"},
			code:    cli.ExitFailure,
			want:    []string{"✗ 1 object is owned by 2 running replicas at once (Leases sluice-leader-election, sluice-leader-election-a): GitRepository APPS/twice-a\n"},
		},
		{
			name:    "leases of which none is live say that no replica runs",
			leases:  []replicaLease{{name: "sluice-leader-election-a", selector: "sharding.sluice.dev/key=a-NS", holder: "pod-a", ago: time.Hour}},
			objects: map[string]string{"none-a": "a-NS"},
			code:    cli.ExitFailure,
			want:    []string{"✗ no operator replica holds a live Lease in NS", "GitRepository APPS/none-a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			deployment(t, ns, "sluice", "ghcr.io/sluice-dev/sluice:v0.1.0")
			updateStatus(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "sluice", Namespace: ns}}, readyOperator)
			expand := func(s string) string {
				return strings.NewReplacer("APPS", apps, "NS", ns).Replace(s)
			}
			for _, l := range tt.leases {
				l.selector = expand(l.selector)
				l.create(t, ns)
			}
			for name, key := range tt.objects {
				r := gitRepositoryObject(apps, name)
				if key != "" {
					r.Labels = map[string]string{sharding.KeyLabel: expand(key)}
				}
				create(t, r)
			}
			r := run(t, "check", "-n", ns)
			if r.code != tt.code {
				t.Errorf("exit code %d (%v), want %d\nout:\n%s", r.code, r.error, tt.code, r.out)
			}
			for _, line := range tt.want {
				if line = expand(line); !strings.Contains(r.out, line) {
					t.Errorf("the output lacks %q:\n%s", line, r.out)
				}
			}
			for _, s := range tt.notWant {
				if s = expand(s); strings.Contains(r.out, s) {
					t.Errorf("the output has %q:\n%s", s, r.out)
				}
			}
			if err := expand(tt.err); err != "" && (r.error == nil || !strings.Contains(r.error.Error(), err)) {
				t.Errorf("got error %v, want one with %q", r.error, err)
			}
		})
	}
}

func gitRepositoryObject(ns, name string) *sourcev1.GitRepository {
	return &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       sourcev1.GitRepositorySpec{URL: "https://git.example.com/app.git", Interval: metav1.Duration{Duration: time.Minute}},
	}
}
