package build

import (
	"regexp"
	"strings"
	"testing"
)

var (
	// fuzzName is what a postBuild variable's name may be.
	fuzzName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// plainValue is a value that YAML reads back as the same string
	// inside double quotes.
	plainValue = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
	// yamlBool is a word YAML 1.1 reads as a boolean. Substitution works
	// on the YAML kustomize writes from JSON, which drops the quotes of
	// "${VAR}" (Flux's res.AsYAML does the same), so such a value lands
	// as a boolean in Sluice as in Flux: Flux documents quoting through
	// a variable (kustomize-controller#1129).
	yamlBool = regexp.MustCompile(`^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
)

// FuzzSubstitute substitutes fuzzed text, and one fuzzed variable
// reference (${name}, ${name:=default} or ${name:-default}) between
// fuzzed text, with the variable defined or not. Text without "${" comes
// out as it went in; the reference becomes the variable's value when it
// is defined, else its default, else nothing, and the text around it is
// left alone; and substituting the result again changes nothing, when
// neither the text nor the values hold a "$".
func FuzzSubstitute(f *testing.F) {
	f.Add("replicas: ${N:=2}", "a: ", "\n", "A", "x", "d", uint8(0), true)
	f.Add("${", "", "", "N", "", "", uint8(1), false)
	f.Add("$${X}", "image: app:", "", "TAG", "1.2.3", "latest", uint8(2), false)
	f.Add("${:=}", "${X:-y}", "}", "_", "{}", "", uint8(1), true)
	f.Fuzz(func(t *testing.T, text, before, after, name, value, def string, op uint8, defined bool) {
		vars := map[string]string{"A": "a", "N": "3"}
		out := string(substitute([]byte(text), vars))
		if !strings.Contains(text, "${") && out != text {
			t.Fatalf("text without variables changed: %q -> %q", text, out)
		}
		if !strings.ContainsAny(text, "$") && strings.Contains(out, "${") {
			t.Fatalf("substitution made a variable: %q -> %q", text, out)
		}

		if !fuzzName.MatchString(name) || strings.ContainsAny(def, "}") || strings.ContainsAny(before+after, "${}") {
			return
		}
		ref, want := "${"+name+"}", ""
		switch op % 3 {
		case 1:
			ref, want = "${"+name+":="+def+"}", def
		case 2:
			ref, want = "${"+name+":-"+def+"}", def
		}
		vars = map[string]string{}
		if defined {
			vars[name], want = value, value
		}
		got := string(substitute([]byte(before+ref+after), vars))
		if got != before+want+after {
			t.Fatalf("%q with %v became %q, want %q", before+ref+after, vars, got, before+want+after)
		}
		if !strings.Contains(value+def, "$") {
			if again := string(substitute([]byte(got), vars)); again != got {
				t.Fatalf("substituting %q again gave %q", got, again)
			}
		}
	})
}

// FuzzBuildSubstitution builds a Kustomization whose objects take a
// fuzzed variable, with and without a default, with the variable defined
// and with substituteStrategy Always and no variables. A build either
// fails naming the object a value made invalid (or the file, when the
// default in it is not YAML), or gives both objects;
// the object that opts out of substitution is never changed; and a value
// made of letters and digits lands in the field as it is.
func FuzzBuildSubstitution(f *testing.F) {
	f.Add("eu-1", "2", false)
	f.Add("3", "x", true)
	f.Add("a: [", "", false)
	f.Add("'\n\"", "}", true)
	f.Add("${CLUSTER}", "$${X}", false)
	f.Fuzz(func(t *testing.T, value, def string, always bool) {
		if strings.ContainsAny(def, "}\n") {
			return
		}
		const optOut = `apiVersion: v1
kind: ConfigMap
metadata:
  name: as-written
  annotations:
    kustomize.toolkit.fluxcd.io/substitute: disabled
data:
  note: keeps ${CLUSTER} as written
`
		files := map[string][]byte{
			"app/cm.yaml":   []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  cluster: \"${CLUSTER}\"\n  zone: ${ZONE:=" + def + "}\n"),
			"app/keep.yaml": []byte(optOut),
		}
		opts := Options{Path: "app", Substitute: map[string]string{"CLUSTER": value}}
		if always {
			opts = Options{Path: "app", SubstituteAlways: true}
		}
		objs, err := Build(files, opts)
		if err != nil {
			// The default is written in the file: one YAML refuses is the
			// file's fault, which kustomize names.
			if !strings.Contains(err.Error(), "postBuild substitution made ConfigMap settings invalid") && !strings.Contains(err.Error(), "cm.yaml") {
				t.Fatalf("value %q, default %q: the error names neither the object nor its file: %v", value, def, err)
			}
			return
		}
		if len(objs) != 2 {
			t.Fatalf("value %q, default %q: %d objects, want 2", value, def, len(objs))
		}
		for _, obj := range objs {
			data := stringsAt(obj.Object, "data")
			switch obj.GetName() {
			case "as-written":
				if data["note"] != "keeps ${CLUSTER} as written" {
					t.Fatalf("the object that opts out changed: %q", data["note"])
				}
			case "settings":
				if !always && plainValue.MatchString(value) && !yamlBool.MatchString(value) && data["cluster"] != value {
					t.Fatalf("value %q landed as %q", value, data["cluster"])
				}
			}
		}
	})
}

// stringsAt reads a map of strings from an object's field.
func stringsAt(obj map[string]any, field string) map[string]string {
	out := map[string]string{}
	m, _ := obj[field].(map[string]any)
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out
}
