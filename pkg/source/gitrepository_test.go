package source

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sourcev1 "sluice.dev/sluice/api/source/v1"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
)

var cp *controlplane.ControlPlane

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, controlplane.Options{APIOnly: true}, &cp))
}

// events records the reasons of the events a reconciler sends.
type events struct {
	mu      sync.Mutex
	reasons []string
}

func (e *events) Eventf(_ runtime.Object, _ runtime.Object, _, reason, _, _ string, _ ...interface{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reasons = append(e.reasons, reason)
}

// repository creates a namespace, a Secret with the given data and a
// GitRepository on the server's main branch that uses it.
func repository(t *testing.T, ns, url string, secret map[string]string) *sourcev1.GitRepository {
	t.Helper()
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}}
	repo := &sourcev1.GitRepository{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: ns},
		Spec: sourcev1.GitRepositorySpec{
			URL: url, Interval: metav1.Duration{Duration: time.Minute},
			Reference: &sourcev1.GitRepositoryRef{Branch: "main"},
		},
	}
	if secret != nil {
		objs = append(objs, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "git", Namespace: ns}, StringData: secret})
		repo.Spec.SecretRef = &sourcev1.LocalObjectReference{Name: "git"}
	}
	for _, o := range append(objs, repo) {
		if err := cp.Client.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	return repo
}

func reconcile(t *testing.T, r *GitRepositoryReconciler, repo *sourcev1.GitRepository) *sourcev1.GitRepository {
	t.Helper()
	res, err := r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(repo)})
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter != time.Minute {
		t.Errorf("requeue after %s, want the interval", res.RequeueAfter)
	}
	got := &sourcev1.GitRepository{}
	if err := cp.Client.Get(t.Context(), client.ObjectKeyFromObject(repo), got); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAGitRepositoryIsFetchedOnlyWhenItsRevisionMoves(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	head := s.Commit(map[string]string{"deploy/app.yaml": "kind: ConfigMap\n"})
	repo := repository(t, "fetch", s.URL, map[string]string{"username": "sluice", "password": "s3cret"})
	ev := &events{}
	r := &GitRepositoryReconciler{Client: cp.Client, Events: ev, Store: NewStore()}

	got := reconcile(t, r, repo)
	ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
	if ready == nil || ready.Status != metav1.ConditionTrue || got.Status.Artifact == nil || got.Status.Artifact.Revision != "main@sha1:"+head {
		t.Fatalf("status %+v", got.Status)
	}
	stored, ok := r.Store.Get(client.ObjectKeyFromObject(repo))
	if !ok || string(stored.Files["deploy/app.yaml"]) != "kind: ConfigMap\n" || stored.Digest != got.Status.Artifact.Digest {
		t.Fatalf("store holds %+v", stored)
	}

	fetches := s.Fetches()
	reconcile(t, r, got)
	if n := s.Fetches(); n != fetches {
		t.Fatalf("an unchanged remote was fetched again (%d upload-packs, want %d)", n, fetches)
	}

	next := s.Commit(map[string]string{"deploy/app.yaml": "kind: Secret\n"})
	got = reconcile(t, r, got)
	if got.Status.Artifact.Revision != "main@sha1:"+next {
		t.Fatalf("after a push the revision is %s", got.Status.Artifact.Revision)
	}
	if n := strings.Count(fmt.Sprint(ev.reasons), "NewArtifact"); n != 2 {
		t.Fatalf("events %v, want one NewArtifact per revision", ev.reasons)
	}
}

func TestAGitRepositoryThatCannotAuthenticateSaysWhy(t *testing.T) {
	t.Parallel()
	s := gitserver.New(t)
	s.Commit(map[string]string{"a.yaml": "a: 1\n"})
	tests := []struct {
		name   string
		ns     string
		secret map[string]string
		want   string
	}{
		{"a wrong password names the Secret", "wrong-password", map[string]string{"username": "sluice", "password": "nope"}, "spec.secretRef (Secret git)"},
		{"no Secret at all says secretRef is not set", "no-secret", nil, "spec.secretRef is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := repository(t, tt.ns, s.URL, tt.secret)
			r := &GitRepositoryReconciler{Client: cp.Client, Events: &events{}, Store: NewStore()}
			got := reconcile(t, r, repo)
			ready := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != sourcev1.ReasonAuthenticationFailed || !strings.Contains(ready.Message, tt.want) {
				t.Fatalf("Ready %+v, want AuthenticationFailed naming %q", ready, tt.want)
			}
			if _, ok := r.Store.Get(client.ObjectKeyFromObject(repo)); ok {
				t.Fatal("a failed fetch stored an artifact")
			}
		})
	}
}
