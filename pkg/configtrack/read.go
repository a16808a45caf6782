package configtrack

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Config is one ConfigMap or Secret a pod template reads.
type Config struct {
	Ref Ref
	// Object is the *corev1.ConfigMap or *corev1.Secret read.
	Object client.Object
	// Sum is its checksum.
	Sum string
}

// MissingError is a required config that does not exist.
type MissingError struct{ Ref Ref }

func (e *MissingError) Error() string { return fmt.Sprintf("%s %s not found", e.Ref.Kind, e.Ref.Name) }

// Read reads the configs spec refers to in namespace, in Refs' order.
// Optional configs that do not exist are left out; a required one that
// does not exist is a *MissingError.
func Read(ctx context.Context, r client.Reader, namespace string, spec *corev1.PodSpec) ([]Config, error) {
	var out []Config
	for _, ref := range Refs(spec) {
		key := client.ObjectKey{Namespace: namespace, Name: ref.Name}
		c := Config{Ref: ref}
		var err error
		if ref.Kind == ConfigMap {
			cm := &corev1.ConfigMap{}
			err = r.Get(ctx, key, cm)
			c.Object, c.Sum = cm, ChecksumConfigMap(cm)
		} else {
			s := &corev1.Secret{}
			err = r.Get(ctx, key, s)
			c.Object, c.Sum = s, ChecksumSecret(s)
		}
		switch {
		case apierrors.IsNotFound(err) && ref.Optional:
			continue
		case apierrors.IsNotFound(err):
			return nil, &MissingError{Ref: ref}
		case err != nil:
			return nil, fmt.Errorf("read %s %s: %w", ref.Kind, ref.Name, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// Checksums maps the key of each config that takes part in tracking to
// its checksum; nil when none does, or when tracking is off.
func Checksums(configs []Config, tracking bool) map[string]string {
	if !tracking {
		return nil
	}
	var out map[string]string
	for _, c := range configs {
		if !Tracked(c.Object) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[c.Ref.Key()] = c.Sum
	}
	return out
}
