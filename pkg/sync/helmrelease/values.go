package helmrelease

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common/util"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/strvals"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

// valuesLayer is one entry of spec.valuesFrom with its content, or nil
// content for an optional one that is missing.
type valuesLayer struct {
	ref     syncv2.ValuesReference
	index   int
	content *string
}

// mergeValues merges the layers in order, then spec.values over them, as
// Flux does: a layer with targetPath sets that path to its whole content
// (setPath); any other is YAML merged in deeply.
func mergeValues(layers []valuesLayer, inline []byte) (map[string]any, error) {
	out := map[string]any{}
	for _, l := range layers {
		if l.content == nil {
			continue
		}
		where := fmt.Sprintf("spec.valuesFrom[%d] (%s %s key %s)", l.index, l.ref.Kind, l.ref.Name, valuesKey(l.ref))
		if l.ref.TargetPath != "" {
			if err := setPath(out, l.ref.TargetPath, *l.content, l.ref.Literal); err != nil {
				return nil, fmt.Errorf("%s: targetPath %q: %w", where, l.ref.TargetPath, err)
			}
			continue
		}
		layer := map[string]any{}
		if err := yaml.Unmarshal([]byte(*l.content), &layer); err != nil {
			return nil, fmt.Errorf("%s: not YAML values: %w", where, err)
		}
		out = mergeMaps(out, layer)
	}
	if len(inline) > 0 {
		layer := map[string]any{}
		if err := json.Unmarshal(inline, &layer); err != nil {
			return nil, fmt.Errorf("spec.values: %w", err)
		}
		out = mergeMaps(out, layer)
	}
	return out, nil
}

// setPath sets the dotted path in values to value, as Flux's chartutil
// does. Without literal, value is read as helm --set reads it (a number
// or a boolean is typed, commas and braces are syntax), or as --set-string
// when it is quoted, the quotes dropped. With literal, value is kept
// verbatim, as helm --set-literal keeps it: the characters --set reads as
// syntax are escaped, so that the path may still escape its dots (\.).
func setPath(values map[string]any, path, value string, literal bool) error {
	if literal {
		// The backslash first, so that the escapes are not escaped again.
		escape := strings.NewReplacer(`\`, `\\`, `,`, `\,`, `[`, `\[`, `]`, `\]`, `{`, `\{`, `}`, `\}`)
		return strvals.ParseIntoString(path+"="+escape.Replace(value), values)
	}
	single := strings.HasPrefix(value, "'") && strings.HasSuffix(value, "'")
	double := strings.HasPrefix(value, `"`) && strings.HasSuffix(value, `"`)
	if single || double {
		return strvals.ParseIntoString(path+"="+strings.Trim(value, `'"`), values)
	}
	return strvals.ParseInto(path+"="+value, values)
}

// mergeMaps merges b into a deeply: maps merge, anything else replaces.
func mergeMaps(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	for k, v := range b {
		if bv, ok := v.(map[string]any); ok {
			if av, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(av, bv)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// valuesDigest is the sha256 of the values' canonical JSON (map keys
// sorted), which Helm does not keep: the release's Config is compared
// with the desired values by it.
func valuesDigest(values map[string]any) string {
	if len(values) == 0 {
		// Helm stores no values as nil, and none given as an empty map.
		values = map[string]any{}
	}
	return jsonDigest(values)
}

// preservedDigest is the digest of the values an upgrade with
// upgrade.preserveValues stores: the HelmRelease's over the last
// release's, as Helm's reuse-values merges them. Compared with the last
// release's, it says whether that upgrade is still to be done.
func preservedDigest(hr *syncv2.HelmRelease, rel *releasev1.Release, values map[string]any, digest string) string {
	if hr.Spec.Upgrade == nil || !hr.Spec.Upgrade.PreserveValues || rel == nil {
		return digest
	}
	// CoalesceTables writes into its first argument, and keeps maps of
	// the second: both are copies.
	merged := util.CoalesceTables(cloneValues(values), cloneValues(rel.Config))
	return valuesDigest(merged)
}

// cloneValues is a deep copy of values, through JSON as Helm stores them.
func cloneValues(values map[string]any) map[string]any {
	out := map[string]any{}
	data, err := json.Marshal(values)
	if err == nil {
		err = json.Unmarshal(data, &out)
	}
	if err != nil {
		// Values came from JSON or YAML and marshal again; should they
		// not, the digest differs and an upgrade makes them settle.
		return map[string]any{}
	}
	return out
}

func valuesKey(ref syncv2.ValuesReference) string {
	if ref.ValuesKey != "" {
		return ref.ValuesKey
	}
	return "values.yaml"
}

// readValues reads spec.valuesFrom, in the HelmRelease's namespace.
func readValues(ctx context.Context, c client.Reader, hr *syncv2.HelmRelease) ([]valuesLayer, error) {
	var layers []valuesLayer
	for i, ref := range hr.Spec.ValuesFrom {
		key := types.NamespacedName{Namespace: hr.Namespace, Name: ref.Name}
		var data map[string]string
		var err error
		if ref.Kind == "Secret" {
			secret := &corev1.Secret{}
			if err = c.Get(ctx, key, secret); err == nil {
				data = map[string]string{}
				for k, v := range secret.Data {
					data[k] = string(v)
				}
			}
		} else {
			cm := &corev1.ConfigMap{}
			if err = c.Get(ctx, key, cm); err == nil {
				data = cm.Data
			}
		}
		layer := valuesLayer{ref: ref, index: i}
		switch {
		case apierrors.IsNotFound(err) && ref.Optional:
		case err != nil:
			return nil, fmt.Errorf("spec.valuesFrom[%d]: %s %s: %w", i, ref.Kind, ref.Name, err)
		default:
			content, ok := data[valuesKey(ref)]
			if !ok && !ref.Optional {
				return nil, fmt.Errorf("spec.valuesFrom[%d]: %s %s has no key %s", i, ref.Kind, ref.Name, valuesKey(ref))
			}
			if ok {
				layer.content = &content
			}
		}
		layers = append(layers, layer)
	}
	return layers, nil
}
