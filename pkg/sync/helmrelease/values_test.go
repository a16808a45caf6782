package helmrelease

import (
	"reflect"
	"strings"
	"testing"

	syncv2 "sluice.dev/sluice/api/sync/v2"
)

func TestMergeValues(t *testing.T) {
	str := func(s string) *string { return &s }
	cm := func(content *string, targetPath string) valuesLayer {
		return valuesLayer{ref: syncv2.ValuesReference{Kind: "ConfigMap", Name: "v", TargetPath: targetPath}, content: content}
	}
	literal := func(content *string, targetPath string) valuesLayer {
		l := cm(content, targetPath)
		l.ref.Literal = true
		return l
	}
	tests := []struct {
		name    string
		layers  []valuesLayer
		inline  string
		want    map[string]any
		wantErr string
	}{
		{"layers merge deeply in order", []valuesLayer{cm(str("image: {repo: a, tag: '1'}\nreplicas: 2\n"), ""), cm(str("image: {tag: '2'}\n"), "")}, "",
			map[string]any{"image": map[string]any{"repo": "a", "tag": "2"}, "replicas": float64(2)}, ""},
		{"inline values win over every layer", []valuesLayer{cm(str("replicas: 2\n"), "")}, `{"replicas": 3}`,
			map[string]any{"replicas": float64(3)}, ""},
		{"a targetPath puts the whole content at the path", []valuesLayer{cm(str("s3cret"), "auth.password")}, "",
			map[string]any{"auth": map[string]any{"password": "s3cret"}}, ""},
		{"a targetPath types its content as helm --set does", []valuesLayer{cm(str("8080"), "port"), cm(str("true"), "tls")}, "",
			map[string]any{"port": int64(8080), "tls": true}, ""},
		{"a quoted targetPath content is a string, unquoted", []valuesLayer{cm(str(`"8080"`), "port")}, "",
			map[string]any{"port": "8080"}, ""},
		{"a targetPath reads commas as --set syntax, as Flux does", []valuesLayer{cm(str("kafka01.net:9092,kafka02.net:9092"), "kafka.brokers")}, "",
			nil, `targetPath "kafka.brokers"`},
		{"literal keeps commas, colons and equal signs verbatim", []valuesLayer{literal(str("kafka01.net:9092,kafka02.net:9092"), "kafka.brokers"), literal(str("a=b=c"), "eq")}, "",
			map[string]any{"kafka": map[string]any{"brokers": "kafka01.net:9092,kafka02.net:9092"}, "eq": "a=b=c"}, ""},
		{"literal keeps a whole file, brackets, braces and backslashes included", []valuesLayer{literal(str("kafka {\n  hosts = [\"b-1:9098\", \"b-2\"]\n  path = \"C:\\\\dir\"\n}\n"), `config.application\.conf`)}, "",
			map[string]any{"config": map[string]any{"application.conf": "kafka {\n  hosts = [\"b-1:9098\", \"b-2\"]\n  path = \"C:\\\\dir\"\n}\n"}}, ""},
		{"literal keeps a boolean or a number a string", []valuesLayer{literal(str("true"), "feature.enabled"), literal(str("8080"), "port")}, "",
			map[string]any{"feature": map[string]any{"enabled": "true"}, "port": "8080"}, ""},
		{"literal without targetPath merges the content as YAML", []valuesLayer{literal(str("flat: value\n"), "")}, "",
			map[string]any{"flat": "value"}, ""},
		{"a missing optional layer adds nothing", []valuesLayer{cm(nil, "")}, `{"a": 1}`, map[string]any{"a": float64(1)}, ""},
		{"a layer that is not YAML values names the entry", []valuesLayer{cm(str("- a list"), "")}, "", nil, "spec.valuesFrom[0] (ConfigMap v key values.yaml)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mergeValues(tt.layers, []byte(tt.inline))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("values %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestValuesDigestIgnoresKeyOrder(t *testing.T) {
	a := valuesDigest(map[string]any{"a": 1, "b": map[string]any{"c": 2, "d": 3}})
	b := valuesDigest(map[string]any{"b": map[string]any{"d": 3, "c": 2}, "a": 1})
	if a != b || !strings.HasPrefix(a, "sha256:") {
		t.Fatalf("digests %s and %s", a, b)
	}
}
