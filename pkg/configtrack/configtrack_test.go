package configtrack

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// podSpec uses configs every way a pod can.
func podSpec() *corev1.PodSpec {
	return &corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "vol-cm"}}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret", Optional: ptr.To(true)}}},
			{Name: "c", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj-cm"}}},
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "proj-secret"}}},
			}}}},
			{Name: "d", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
		InitContainers: []corev1.Container{{Name: "init", EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "init-cm"}}},
		}}},
		Containers: []corev1.Container{{Name: "app",
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "env-secret"}, Optional: ptr.To(true)}}},
			Env: []corev1.EnvVar{
				{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "vol-cm"}, Key: "x"}}},
				{Name: "Y", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "key-secret"}, Key: "y"}}},
				{Name: "Z", Value: "plain"},
			},
		}},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}},
	}
}

func TestRefsFindEveryConfigAPodReads(t *testing.T) {
	got := Refs(podSpec())
	want := []Ref{
		{Kind: ConfigMap, Name: "init-cm"},
		{Kind: ConfigMap, Name: "proj-cm"},
		{Kind: ConfigMap, Name: "vol-cm"},
		{Kind: Secret, Name: "env-secret", Optional: true},
		{Kind: Secret, Name: "key-secret"},
		{Kind: Secret, Name: "proj-secret"},
		{Kind: Secret, Name: "vol-secret", Optional: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("refs\n got %+v\nwant %+v", got, want)
	}
}

func TestAConfigIsOptionalOnlyIfEveryUseIsOptional(t *testing.T) {
	spec := &corev1.PodSpec{Containers: []corev1.Container{{
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Optional: ptr.To(true)}}},
		Env:     []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}},
	}}}
	if refs := Refs(spec); len(refs) != 1 || refs[0].Optional {
		t.Fatalf("refs %+v, want one required ref", refs)
	}
}

func TestRewritePointsEveryUseAtTheCopies(t *testing.T) {
	spec := podSpec()
	renames := map[string]string{}
	for _, r := range Refs(spec) {
		if r.Name != "key-secret" {
			renames[r.Key()] = PrimaryName(r.Name)
		}
	}
	Rewrite(spec, renames)
	var names []string
	for _, r := range Refs(spec) {
		names = append(names, r.Key())
	}
	want := []string{"configmap/init-cm-primary", "configmap/proj-cm-primary", "configmap/vol-cm-primary",
		"secret/env-secret-primary", "secret/key-secret", "secret/proj-secret-primary", "secret/vol-secret-primary"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("after rewrite %v, want %v", names, want)
	}
	if spec.ImagePullSecrets[0].Name != "registry" {
		t.Fatalf("image pull secret renamed to %q", spec.ImagePullSecrets[0].Name)
	}
}

func TestChecksumsChangeWithTheDataOnly(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Labels: map[string]string{"a": "b"}}, Data: map[string]string{"k": "v", "l": "w"}}
	same := cm.DeepCopy()
	same.Labels = nil
	changed := cm.DeepCopy()
	changed.Data["k"] = "v2"
	moved := &corev1.ConfigMap{Data: map[string]string{"kv": "", "l": "w"}}
	if ChecksumConfigMap(cm) != ChecksumConfigMap(same) {
		t.Error("metadata changed the checksum")
	}
	if ChecksumConfigMap(cm) == ChecksumConfigMap(changed) {
		t.Error("a data change kept the checksum")
	}
	if ChecksumConfigMap(cm) == ChecksumConfigMap(moved) {
		t.Error("moving bytes between key and value kept the checksum")
	}
	s := &corev1.Secret{Data: map[string][]byte{"k": []byte("v")}}
	s2 := s.DeepCopy()
	s2.Data["k"] = []byte("v2")
	if ChecksumSecret(s) == ChecksumSecret(s2) {
		t.Error("a secret data change kept the checksum")
	}
	if Checksum(nil) != "" || Checksum(map[string]string{"a": "1"}) == Checksum(map[string]string{"a": "2"}) {
		t.Error("the combined checksum does not follow its parts")
	}
}

func TestTrackingCanBeDisabledPerObject(t *testing.T) {
	for _, key := range []string{"sluice.dev/config-tracking", "flagger.app/config-tracking"} {
		obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{key: "disabled"}}}
		if Tracked(obj) {
			t.Errorf("%s: disabled is still tracked", key)
		}
	}
	if !Tracked(&corev1.Secret{}) {
		t.Error("a plain secret is not tracked")
	}
}

func TestPrimaryCopiesKeepTheDataUnderTheNewName(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}, Data: map[string]string{"k": "v"}, Immutable: ptr.To(true)}
	c := PrimaryConfigMap(cm)
	if c.Name != "cm-primary" || c.Namespace != "ns" || c.Data["k"] != "v" || c.Immutable != nil {
		t.Fatalf("copy %+v", c)
	}
	s := PrimarySecret(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("x")}})
	if s.Name != "s-primary" || s.Type != corev1.SecretTypeTLS || string(s.Data["tls.crt"]) != "x" {
		t.Fatalf("copy %+v", s)
	}
}
