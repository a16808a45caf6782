// Package configtrack finds the ConfigMaps and Secrets a pod template uses,
// checksums them, and makes the -primary copies the primary workload reads,
// so that a config change is a new revision like a pod template change.
package configtrack

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// Kind is ConfigMap or Secret.
type Kind string

// Kinds of tracked configs.
const (
	ConfigMap Kind = "ConfigMap"
	Secret    Kind = "Secret"
)

// Ref is a reference from a pod template to a config.
type Ref struct {
	Kind Kind
	Name string
	// Optional is set when every use of the config in the template is
	// optional, so that its absence is no error.
	Optional bool
}

// Key names a config in status.trackedConfigs: configmap/<name> or
// secret/<name>.
func (r Ref) Key() string { return strings.ToLower(string(r.Kind)) + "/" + r.Name }

// PrimaryName is the name of the copy the primary reads.
func PrimaryName(name string) string { return name + "-primary" }

// Refs lists the configs a pod spec reads through volumes, projected
// volumes, env and envFrom of its containers and init containers, in a
// stable order. Image pull secrets are not tracked: they are not data the
// application reads.
func Refs(spec *corev1.PodSpec) []Ref {
	refs := map[string]*Ref{}
	add := func(kind Kind, name string, optional *bool) {
		if name == "" {
			return
		}
		opt := optional != nil && *optional
		key := Ref{Kind: kind, Name: name}.Key()
		if r, ok := refs[key]; ok {
			r.Optional = r.Optional && opt
			return
		}
		refs[key] = &Ref{Kind: kind, Name: name, Optional: opt}
	}
	for _, v := range spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			add(ConfigMap, v.ConfigMap.Name, v.ConfigMap.Optional)
		case v.Secret != nil:
			add(Secret, v.Secret.SecretName, v.Secret.Optional)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					add(ConfigMap, s.ConfigMap.Name, s.ConfigMap.Optional)
				}
				if s.Secret != nil {
					add(Secret, s.Secret.Name, s.Secret.Optional)
				}
			}
		}
	}
	for _, c := range containers(spec) {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				add(ConfigMap, e.ConfigMapRef.Name, e.ConfigMapRef.Optional)
			}
			if e.SecretRef != nil {
				add(Secret, e.SecretRef.Name, e.SecretRef.Optional)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				add(ConfigMap, r.Name, r.Optional)
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				add(Secret, r.Name, r.Optional)
			}
		}
	}
	out := make([]Ref, 0, len(refs))
	for _, k := range slices.Sorted(maps.Keys(refs)) {
		out = append(out, *refs[k])
	}
	return out
}

// Rewrite points the pod spec's references at other configs; renames maps
// a Ref.Key to the new name. References not in renames are left alone.
func Rewrite(spec *corev1.PodSpec, renames map[string]string) {
	rename := func(kind Kind, name *string) {
		if n, ok := renames[Ref{Kind: kind, Name: *name}.Key()]; ok {
			*name = n
		}
	}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		switch {
		case v.ConfigMap != nil:
			rename(ConfigMap, &v.ConfigMap.Name)
		case v.Secret != nil:
			rename(Secret, &v.Secret.SecretName)
		case v.Projected != nil:
			for j := range v.Projected.Sources {
				s := &v.Projected.Sources[j]
				if s.ConfigMap != nil {
					rename(ConfigMap, &s.ConfigMap.Name)
				}
				if s.Secret != nil {
					rename(Secret, &s.Secret.Name)
				}
			}
		}
	}
	for _, c := range containers(spec) {
		for j := range c.EnvFrom {
			if r := c.EnvFrom[j].ConfigMapRef; r != nil {
				rename(ConfigMap, &r.Name)
			}
			if r := c.EnvFrom[j].SecretRef; r != nil {
				rename(Secret, &r.Name)
			}
		}
		for j := range c.Env {
			if vf := c.Env[j].ValueFrom; vf != nil {
				if r := vf.ConfigMapKeyRef; r != nil {
					rename(ConfigMap, &r.Name)
				}
				if r := vf.SecretKeyRef; r != nil {
					rename(Secret, &r.Name)
				}
			}
		}
	}
}

// containers returns pointers to every container of the spec, init
// containers first.
func containers(spec *corev1.PodSpec) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	for i := range spec.InitContainers {
		out = append(out, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	return out
}

// Tracked reports whether a config takes part in tracking; an annotation
// set to "disabled" opts it out (Sluice's or Flagger's name).
func Tracked(obj metav1.Object) bool {
	a := obj.GetAnnotations()
	return a[sluicev1beta1.ConfigTrackingAnnotation] != "disabled" && a[sluicev1beta1.FlaggerConfigTrackingAnnotation] != "disabled"
}

// ChecksumConfigMap identifies the data of a ConfigMap.
func ChecksumConfigMap(cm *corev1.ConfigMap) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		writeField(h, "d", k, []byte(cm.Data[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		writeField(h, "b", k, cm.BinaryData[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ChecksumSecret identifies the data of a Secret.
func ChecksumSecret(s *corev1.Secret) string {
	h := sha256.New()
	writeField(h, "t", string(s.Type), nil)
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		writeField(h, "d", k, s.Data[k])
	}
	for _, k := range slices.Sorted(maps.Keys(s.StringData)) {
		writeField(h, "s", k, []byte(s.StringData[k]))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Checksum identifies a set of configs by their checksums; empty for none.
func Checksum(configs map[string]string) string {
	if len(configs) == 0 {
		return ""
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		writeField(h, "c", k, []byte(configs[k]))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// writeField writes a length-prefixed field, so that no two different
// inputs hash alike.
func writeField(h interface{ Write([]byte) (int, error) }, tag, key string, value []byte) {
	for _, part := range [][]byte{[]byte(tag), []byte(key), value} {
		n := len(part)
		_, _ = h.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		_, _ = h.Write(part)
	}
}

// PrimaryConfigMap is the copy of a ConfigMap the primary reads.
func PrimaryConfigMap(cm *corev1.ConfigMap) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: PrimaryName(cm.Name), Namespace: cm.Namespace, Labels: maps.Clone(cm.Labels)},
		Data:       maps.Clone(cm.Data),
		BinaryData: maps.Clone(cm.BinaryData),
	}
}

// PrimarySecret is the copy of a Secret the primary reads.
func PrimarySecret(s *corev1.Secret) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: PrimaryName(s.Name), Namespace: s.Namespace, Labels: maps.Clone(s.Labels)},
		Type:       s.Type,
		Data:       maps.Clone(s.Data),
		StringData: maps.Clone(s.StringData),
	}
}
