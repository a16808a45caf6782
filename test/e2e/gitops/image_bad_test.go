package gitops

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	imagev1 "sluice.dev/sluice/api/image/v1"
	"sluice.dev/sluice/pkg/sync/status"
	"sluice.dev/sluice/test/controlplane"
	"sluice.dev/sluice/test/gitserver"
	"sluice.dev/sluice/test/imageregistry"
	"sluice.dev/sluice/test/inprocess"
)

// TestBadImageAutomationInputIsNamedAndNothingIsPushed gives each kind
// input it cannot use: each gets a named condition and a Warning Event,
// and no automation pushes anything.
func TestBadImageAutomationInputIsNamedAndNothingIsPushed(t *testing.T) {
	const namespace, protected = "imagebad", "release"
	open, locked, private := imageregistry.New(t), imageregistry.New(t, imageregistry.WithBasicAuth()), imageregistry.New(t, imageregistry.WithTLS())
	for _, r := range []*imageregistry.Registry{open, locked, private} {
		r.Push(t, "app", "1.0.0")
	}
	l := &imageLoop{t: t, ns: namespace}
	l.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "wrong-creds", Namespace: namespace}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: locked.DockerConfigJSON("pusher", "wrong")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "right-creds", Namespace: namespace}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: locked.DockerConfigJSON()}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "puller", Namespace: namespace}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "right-creds"}}},
		func() *imagev1.ImageRepository {
			r := repository("sa-creds", locked.Image("app"), "")
			r.Spec.ServiceAccountName = "puller"
			return r
		}(),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "registry-ca", Namespace: namespace}, Data: map[string][]byte{"ca.crt": private.CAPEM}},
		func() *imagev1.ImageRepository {
			r := repository("tls", private.Image("app"), "")
			r.Spec.Insecure, r.Spec.CertSecretRef = false, &imagev1.LocalObjectReference{Name: "registry-ca"}
			return r
		}(),
		func() *imagev1.ImageRepository {
			r := repository("untrusted", private.Image("app"), "")
			r.Spec.Insecure = false
			return r
		}(),
		repository("unreachable", "127.0.0.1:1/app", ""),
		repository("wrong-creds", locked.Image("app"), "wrong-creds"),
		repository("app", open.Image("app"), ""),
		// A semver range that does not parse is refused by the API server
		// (test/e2e/validation); a tag pattern is not, and is reported.
		&imagev1.ImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "bad-pattern", Namespace: namespace}, Spec: imagev1.ImagePolicySpec{
			ImageRepositoryRef: imagev1.NamespacedObjectReference{Name: "app"},
			Policy:             imagev1.ImagePolicyChoice{SemVer: &imagev1.SemVerPolicy{Range: "^1.x"}},
			FilterTags:         &imagev1.TagFilter{Pattern: "^1.(["},
		}},
		&imagev1.ImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: namespace}, Spec: imagev1.ImagePolicySpec{
			ImageRepositoryRef: imagev1.NamespacedObjectReference{Name: "app"},
			Policy:             imagev1.ImagePolicyChoice{SemVer: &imagev1.SemVerPolicy{Range: "^1.x"}},
		}},
	)
	// Each automation has its own repository, so that "nothing pushed"
	// is about it alone.
	automations := map[string]*gitserver.Server{}
	automation := func(name string, files map[string]string, push string) {
		s := gitserver.New(t)
		s.AllowPush()
		s.Commit(files)
		s.ProtectBranch(protected)
		secret, repo := s.Source(namespace, name, time.Hour)
		l.create(secret, repo, &imagev1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: imagev1.ImageUpdateAutomationSpec{
			SourceRef: imagev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: name},
			Interval:  metav1.Duration{Duration: time.Hour},
			GitSpec: &imagev1.GitSpec{
				Commit: imagev1.CommitSpec{Author: imagev1.CommitUser{Name: "Sluice", Email: "sluice@example.com"}},
				Push:   &imagev1.PushSpec{Branch: push},
			},
			Update: &imagev1.UpdateStrategy{Strategy: imagev1.UpdateStrategySetters},
		}})
		automations[name] = s
	}
	marked := func(policy string) string {
		return markedDeployment(open.Image("app")+":0.9.0", namespace+":"+policy)
	}
	automation("missing-policy", map[string]string{"deploy.yaml": marked("nope")}, "main")
	automation("not-yaml", map[string]string{"deploy.yaml": marked("app"), "broken.yaml": "kind: [Deployment\nimage: app:1 # {\"$imagepolicy\": \"" + namespace + ":app\"}\n"}, "main")
	automation("protected", map[string]string{"deploy.yaml": marked("app")}, protected)
	inprocess.Start(t, cp.Config, namespace, testr.NewWithOptions(t, testr.Options{Verbosity: 0}))

	tests := []struct {
		name   string
		obj    status.Object
		reason string
		says   []string
	}{
		{"an unreachable registry", &imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: "unreachable"}}, imagev1.ReasonUnreachable, []string{"127.0.0.1:1"}},
		{"a registry whose certificate is not trusted", &imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: "untrusted"}}, imagev1.ReasonUnreachable, []string{"certificate"}},
		{"wrong registry credentials", &imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: "wrong-creds"}}, imagev1.ReasonAuthenticationFailed, []string{"spec.secretRef (Secret wrong-creds)"}},
		{"a tag pattern that does not parse", &imagev1.ImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "bad-pattern"}}, imagev1.ReasonInvalidSpec, []string{"spec.filterTags.pattern"}},
		{"a marker naming a missing policy", &imagev1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Name: "missing-policy"}}, imagev1.ReasonPolicyNotFound, []string{"deploy.yaml", namespace + ":nope"}},
		{"a file that is not YAML", &imagev1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Name: "not-yaml"}}, imagev1.ReasonInvalidFile, []string{"broken.yaml"}},
		{"a branch the credentials cannot push to", &imagev1.ImageUpdateAutomation{ObjectMeta: metav1.ObjectMeta{Name: "protected"}}, imagev1.ReasonPushRejected, []string{protected}},
	}
	for _, good := range []struct{ name, repository string }{
		{"a ServiceAccount's imagePullSecrets are credentials too", "sa-creds"},
		{"certSecretRef's ca.crt makes a private CA trusted", "tls"},
	} {
		t.Run(good.name, func(t *testing.T) {
			controlplane.Eventually(t, time.Minute, "a scan of "+good.repository, func(ctx context.Context) (bool, string) {
				r := &imagev1.ImageRepository{}
				if err := cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: good.repository}, r); err != nil {
					return false, err.Error()
				}
				return meta.IsStatusConditionTrue(r.Status.Conditions, "Ready") && r.Status.LastScanResult != nil && r.Status.LastScanResult.TagCount == 1,
					fmt.Sprintf("%+v", r.Status)
			})
		})
	}
	for _, tt := range tests {
		t.Run(tt.name+" is a named condition and a Warning Event", func(t *testing.T) {
			waitFailure(t, namespace, tt.obj, tt.reason, tt.says...)
		})
	}
	for name, s := range automations {
		if log := s.Git("log", "--all", "--format=%an %s"); strings.Contains(log, "Sluice") {
			t.Errorf("automation %s pushed despite its error:\n%s", name, log)
		}
	}
}

func repository(name, image, secret string) *imagev1.ImageRepository {
	r := &imagev1.ImageRepository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "imagebad"}, Spec: imagev1.ImageRepositorySpec{
		Image: image, Interval: metav1.Duration{Duration: time.Hour}, Insecure: true, Timeout: &metav1.Duration{Duration: 5 * time.Second},
	}}
	if secret != "" {
		r.Spec.SecretRef = &imagev1.LocalObjectReference{Name: secret}
	}
	return r
}

func TestTheAPIServerRefusesImageSpecsThatCannotWork(t *testing.T) {
	const namespace = "imagecel"
	if err := cp.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		t.Fatal(err)
	}
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: namespace} }
	ref := imagev1.NamespacedObjectReference{Name: "app"}
	tests := []struct {
		name string
		obj  client.Object
		err  string
	}{
		{"a policy with two rules", &imagev1.ImagePolicy{ObjectMeta: meta("two"), Spec: imagev1.ImagePolicySpec{ImageRepositoryRef: ref,
			Policy: imagev1.ImagePolicyChoice{SemVer: &imagev1.SemVerPolicy{Range: "^1.x"}, Alphabetical: &imagev1.AlphabeticalPolicy{}}}},
			"set exactly one of spec.policy.semver, spec.policy.alphabetical and spec.policy.numerical"},
		{"a policy with no rule", &imagev1.ImagePolicy{ObjectMeta: meta("none"), Spec: imagev1.ImagePolicySpec{ImageRepositoryRef: ref}},
			"set exactly one of spec.policy.semver"},
		{"digests looked up always without an interval", &imagev1.ImagePolicy{ObjectMeta: meta("always"), Spec: imagev1.ImagePolicySpec{ImageRepositoryRef: ref,
			Policy: imagev1.ImagePolicyChoice{SemVer: &imagev1.SemVerPolicy{Range: "^1.x"}}, DigestReflectionPolicy: imagev1.ReflectAlways}},
			"spec.interval is required when spec.digestReflectionPolicy is Always"},
		{"a cloud credentials provider", &imagev1.ImageRepository{ObjectMeta: meta("aws"), Spec: imagev1.ImageRepositorySpec{
			Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app", Interval: metav1.Duration{Duration: time.Minute}, Provider: "aws"}},
			`spec.provider: Unsupported value: "aws"`},
		{"an image with a digest", &imagev1.ImageRepository{ObjectMeta: meta("digest"), Spec: imagev1.ImageRepositorySpec{
			Image: "ghcr.io/org/app@sha256:0123", Interval: metav1.Duration{Duration: time.Minute}}},
			"spec.image must not have a digest"},
		{"a push with neither branch nor refspec", &imagev1.ImageUpdateAutomation{ObjectMeta: meta("push"), Spec: imagev1.ImageUpdateAutomationSpec{
			SourceRef: imagev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "repo"}, Interval: metav1.Duration{Duration: time.Minute},
			GitSpec: &imagev1.GitSpec{Commit: imagev1.CommitSpec{Author: imagev1.CommitUser{Email: "a@b.c"}}, Push: &imagev1.PushSpec{}}}},
			"set spec.git.push.branch or spec.git.push.refspec"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused, naming the field", func(t *testing.T) {
			err := cp.Client.Create(t.Context(), tt.obj)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want an error with %q", err, tt.err)
			}
		})
	}
}

// waitFailure waits until obj is Ready=False for reason, with a message
// naming each of says, and a Warning Event with that reason regards it.
func waitFailure(t *testing.T, namespace string, obj status.Object, reason string, says ...string) {
	t.Helper()
	key := client.ObjectKey{Namespace: namespace, Name: obj.GetName()}
	controlplane.Eventually(t, time.Minute, reason, func(ctx context.Context) (bool, string) {
		if err := cp.Client.Get(ctx, key, obj); err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(obj.GetConditions(), "Ready")
		if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != reason {
			return false, fmt.Sprintf("Ready %+v", ready)
		}
		for _, s := range says {
			if !strings.Contains(ready.Message, s) {
				return false, fmt.Sprintf("Ready message %q does not name %q", ready.Message, s)
			}
		}
		return true, ""
	})
	controlplane.Eventually(t, 30*time.Second, "a Warning "+reason, func(ctx context.Context) (bool, string) {
		var list eventsv1.EventList
		if err := cp.Client.List(ctx, &list, client.InNamespace(namespace)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == key.Name && e.Type == corev1.EventTypeWarning {
				if e.Reason == reason {
					return true, ""
				}
				seen = append(seen, e.Reason)
			}
		}
		return false, fmt.Sprintf("warnings %v", seen)
	})
}
