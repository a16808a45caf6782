package update

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"text/template"
)

const testNamespace = "flux-system"

var testPolicies = map[string]Image{
	"flux-system/podinfo": {Name: "ghcr.io/stefanprodan/podinfo", Tag: "6.5.0"},
	"flux-system/redis":   {Name: "docker.io/library/redis", Tag: "7.2.4"},
	"flux-system/numeric": {Name: "registry.example.com/numeric", Tag: "1.10"},
	"apps/api":            {Name: "registry.example.com/team/api", Tag: "2.0.1", Digest: "sha256:2222"},
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: apps
spec:
  template:
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.4.0 # {"$imagepolicy": "flux-system:podinfo"}
`

const deploymentUpdated = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: apps
spec:
  template:
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/stefanprodan/podinfo:6.5.0 # {"$imagepolicy": "flux-system:podinfo"}
`

func TestApply(t *testing.T) {
	podinfoImage := Change{OldValue: "ghcr.io/stefanprodan/podinfo:6.4.0", NewValue: "ghcr.io/stefanprodan/podinfo:6.5.0", Setter: "flux-system:podinfo"}
	podinfoTag := Change{OldValue: "6.4.0", NewValue: "6.5.0", Setter: "flux-system:podinfo:tag"}

	tests := []struct {
		name    string
		files   map[string]string
		dir     string
		want    map[string]string // the new content of each changed file
		changes []Change
	}{
		{
			name:    "a Deployment's container image is set to the policy's latest image",
			files:   map[string]string{"apps/podinfo/deployment.yaml": deployment},
			want:    map[string]string{"apps/podinfo/deployment.yaml": deploymentUpdated},
			changes: []Change{podinfoImage},
		},
		{
			name: "a HelmRelease's values get the image name and tag separately",
			files: map[string]string{"apps/podinfo/release.yml": `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  values:
    image:
      repository: ghcr.io/stefanprodan/old-podinfo # {"$imagepolicy": "flux-system:podinfo:name"}
      tag: 6.4.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
`},
			want: map[string]string{"apps/podinfo/release.yml": `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  values:
    image:
      repository: ghcr.io/stefanprodan/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}
      tag: 6.5.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
`},
			changes: []Change{
				{OldValue: "ghcr.io/stefanprodan/old-podinfo", NewValue: "ghcr.io/stefanprodan/podinfo", Setter: "flux-system:podinfo:name"},
				podinfoTag,
			},
		},
		{
			name: "every document of a multi-document file is updated",
			files: map[string]string{"apps/all.yaml": `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  tag: 6.4.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
---
# the cache
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis
spec:
  template:
    spec:
      containers:
        - name: redis
          image: docker.io/library/redis:7.0.0 # {"$imagepolicy": "flux-system:redis"}
`},
			want: map[string]string{"apps/all.yaml": `---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  tag: 6.5.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
---
# the cache
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis
spec:
  template:
    spec:
      containers:
        - name: redis
          image: docker.io/library/redis:7.2.4 # {"$imagepolicy": "flux-system:redis"}
`},
			changes: []Change{
				podinfoTag,
				{OldValue: "docker.io/library/redis:7.0.0", NewValue: "docker.io/library/redis:7.2.4", Setter: "flux-system:redis"},
			},
		},
		{
			name: "comments, blank lines, indentation, quoting and key order are kept exactly",
			files: map[string]string{"web.yaml": `# Managed by the platform team.
# Keys are in this order on purpose.

kind: Deployment   # kind first
apiVersion: apps/v1
metadata:
  name: web
  labels: {app: web, tier: "front"}


spec:
    replicas: 3
    template:
        spec:
            containers:
            -   name: web
                image: "ghcr.io/stefanprodan/podinfo:6.4.0"   # {"$imagepolicy": "flux-system:podinfo"}
                args: ['--port', '9898']
            -   name: cache
                image: 'docker.io/library/redis:7.0.0' #{"$imagepolicy":"flux-system:redis"}
    # a trailing comment
`},
			want: map[string]string{"web.yaml": `# Managed by the platform team.
# Keys are in this order on purpose.

kind: Deployment   # kind first
apiVersion: apps/v1
metadata:
  name: web
  labels: {app: web, tier: "front"}


spec:
    replicas: 3
    template:
        spec:
            containers:
            -   name: web
                image: "ghcr.io/stefanprodan/podinfo:6.5.0"   # {"$imagepolicy": "flux-system:podinfo"}
                args: ['--port', '9898']
            -   name: cache
                image: 'docker.io/library/redis:7.2.4' #{"$imagepolicy":"flux-system:redis"}
    # a trailing comment
`},
			changes: []Change{
				podinfoImage,
				{OldValue: "docker.io/library/redis:7.0.0", NewValue: "docker.io/library/redis:7.2.4", Setter: "flux-system:redis"},
			},
		},
		{
			name:  "a field already at the policy's value is not changed and its file is not returned",
			files: map[string]string{"apps/podinfo/deployment.yaml": deploymentUpdated},
			want:  map[string]string{},
		},
		{
			name: "files that are not YAML are ignored, even with markers or broken content",
			files: map[string]string{
				"README.md":                         "image: x:1 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n",
				"charts/app/templates/_helpers.tpl": "{{ define \"x\" }}$imagepolicy{{ end }}\n",
				"charts/app/templates/deploy.yaml":  "{{- if .Values.enabled }}\nimage: {{ .Values.image }}\n{{- end }}\n",
				"apps/podinfo/deployment.yaml":      deployment,
			},
			want:    map[string]string{"apps/podinfo/deployment.yaml": deploymentUpdated},
			changes: []Change{podinfoImage},
		},
		{
			name: "files outside dir are ignored",
			dir:  "./clusters/prod/",
			files: map[string]string{
				"clusters/prod/podinfo.yaml":    deployment,
				"clusters/staging/podinfo.yaml": deployment,
				"clusters/production.yaml":      deployment,
			},
			want:    map[string]string{"clusters/prod/podinfo.yaml": deploymentUpdated},
			changes: []Change{podinfoImage},
		},
		{
			name: "every marked container in a list is updated",
			files: map[string]string{"cron.yaml": `apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - name: warm
              image: docker.io/library/redis:7.0.0 # {"$imagepolicy": "flux-system:redis"}
          containers:
            - name: main
              image: ghcr.io/stefanprodan/podinfo:6.4.0 # {"$imagepolicy": "flux-system:podinfo"}
            - name: unmarked
              image: ghcr.io/stefanprodan/podinfo:6.4.0
            - name: sidecar
              image: ghcr.io/stefanprodan/podinfo:6.4.0 # {"$imagepolicy": "flux-system:podinfo"}
`},
			want: map[string]string{"cron.yaml": `apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
            - name: warm
              image: docker.io/library/redis:7.2.4 # {"$imagepolicy": "flux-system:redis"}
          containers:
            - name: main
              image: ghcr.io/stefanprodan/podinfo:6.5.0 # {"$imagepolicy": "flux-system:podinfo"}
            - name: unmarked
              image: ghcr.io/stefanprodan/podinfo:6.4.0
            - name: sidecar
              image: ghcr.io/stefanprodan/podinfo:6.5.0 # {"$imagepolicy": "flux-system:podinfo"}
`},
			changes: []Change{
				{OldValue: "docker.io/library/redis:7.0.0", NewValue: "docker.io/library/redis:7.2.4", Setter: "flux-system:redis"},
				podinfoImage,
				podinfoImage,
			},
		},
		{
			name: "a Kustomization's images newTag is set and its unchanged newName left alone",
			files: map[string]string{"apps/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: podinfo
    newName: ghcr.io/stefanprodan/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}
    newTag: 6.4.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
`},
			want: map[string]string{"apps/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
images:
  - name: podinfo
    newName: ghcr.io/stefanprodan/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}
    newTag: 6.5.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
`},
			changes: []Change{podinfoTag},
		},
		{
			name: "a policy with a digest writes name:tag@digest, and a digest marker the digest alone",
			files: map[string]string{"api.yaml": `image: registry.example.com/team/api:2.0.0 # {"$imagepolicy": "apps:api"}
digest: sha256:1111 # {"$imagepolicy": "apps:api:digest"}
`},
			want: map[string]string{"api.yaml": `image: registry.example.com/team/api:2.0.1@sha256:2222 # {"$imagepolicy": "apps:api"}
digest: sha256:2222 # {"$imagepolicy": "apps:api:digest"}
`},
			changes: []Change{
				{OldValue: "registry.example.com/team/api:2.0.0", NewValue: "registry.example.com/team/api:2.0.1@sha256:2222", Setter: "apps:api"},
				{OldValue: "sha256:1111", NewValue: "sha256:2222", Setter: "apps:api:digest"},
			},
		},
		{
			name:    "a marker without a namespace names a policy in the automation's namespace",
			files:   map[string]string{"a.yaml": "image: ghcr.io/stefanprodan/podinfo:6.4.0 # {\"$imagepolicy\": \"podinfo\"}\n"},
			want:    map[string]string{"a.yaml": "image: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n"},
			changes: []Change{podinfoImage},
		},
		{
			name:    "a plain tag that would read back as a number is quoted",
			files:   map[string]string{"values.yaml": "tag: 1.9 # {\"$imagepolicy\": \"flux-system:numeric:tag\"}\n"},
			want:    map[string]string{"values.yaml": "tag: \"1.10\" # {\"$imagepolicy\": \"flux-system:numeric:tag\"}\n"},
			changes: []Change{{OldValue: "1.9", NewValue: "1.10", Setter: "flux-system:numeric:tag"}},
		},
		{
			name:    "an anchored or explicitly tagged value is updated where it is written",
			files:   map[string]string{"a.yaml": "image: &img ghcr.io/stefanprodan/podinfo:6.4.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\ntag: !!str 6.4.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\ncopy: *img\n"},
			want:    map[string]string{"a.yaml": "image: &img ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\ntag: !!str 6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\ncopy: *img\n"},
			changes: []Change{podinfoImage, podinfoTag},
		},
		{
			name:    "CRLF line endings and non-ASCII text before the value are kept",
			files:   map[string]string{"crlf.yaml": "# café\r\nmetadata: {name: ünïcode}\r\nimage:   ghcr.io/stefanprodan/podinfo:6.4.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\r\n"},
			want:    map[string]string{"crlf.yaml": "# café\r\nmetadata: {name: ünïcode}\r\nimage:   ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\r\n"},
			changes: []Change{podinfoImage},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := toBytes(tt.files)
			res, err := Apply(files, tt.dir, testNamespace, testPolicies)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			got := map[string]string{}
			for p, b := range res.Files {
				got[p] = string(b)
			}
			for p, want := range tt.want {
				if got[p] != want {
					t.Errorf("%s:\n--- got ---\n%s\n--- want ---\n%s", p, got[p], want)
				}
			}
			for p := range got {
				if _, ok := tt.want[p]; !ok {
					t.Errorf("file %s was changed but should not have been", p)
				}
			}
			if !reflect.DeepEqual(res.Changes, tt.changes) {
				t.Errorf("changes:\n got %+v\nwant %+v", res.Changes, tt.changes)
			}
			// Apply must never write into the caller's files.
			if !reflect.DeepEqual(files, toBytes(tt.files)) {
				t.Error("Apply modified its input")
			}
		})
	}
}

func TestChangesAreGroupedByFileAndObject(t *testing.T) {
	files := toBytes(map[string]string{
		"apps/podinfo/deployment.yaml": deployment,
		"apps/kustomization.yaml":      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: podinfo\n    newTag: 6.4.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\n",
	})
	res, err := Apply(files, "", testNamespace, testPolicies)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	deploy := Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "apps", Name: "podinfo"}
	kust := Object{APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization"}
	wantFiles := map[string]map[Object][]Change{
		"apps/podinfo/deployment.yaml": {deploy: {{OldValue: "ghcr.io/stefanprodan/podinfo:6.4.0", NewValue: "ghcr.io/stefanprodan/podinfo:6.5.0", Setter: "flux-system:podinfo"}}},
		"apps/kustomization.yaml":      {kust: {{OldValue: "6.4.0", NewValue: "6.5.0", Setter: "flux-system:podinfo:tag"}}},
	}
	if !reflect.DeepEqual(res.FileChanges, wantFiles) {
		t.Errorf("FileChanges:\n got %+v\nwant %+v", res.FileChanges, wantFiles)
	}
	if len(res.Objects) != 2 || len(res.Objects[deploy]) != 1 || len(res.Objects[kust]) != 1 {
		t.Errorf("Objects = %+v, want one change for each of the two objects", res.Objects)
	}
	// Changes are in file path order.
	if len(res.Changes) != 2 || res.Changes[0].Setter != "flux-system:podinfo:tag" {
		t.Errorf("Changes = %+v, want the kustomization's change first", res.Changes)
	}
}

func TestAFieldAlreadyAtItsValueStillRecordsItsPolicy(t *testing.T) {
	res, err := Apply(toBytes(map[string]string{"d.yaml": deploymentUpdated}), "", testNamespace, testPolicies)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(res.Changes) != 0 || len(res.Files) != 0 || len(res.FileChanges) != 0 {
		t.Errorf("got changes %+v, files %v; want none", res.Changes, res.Files)
	}
	want := map[string]Image{"flux-system/podinfo": testPolicies["flux-system/podinfo"]}
	if !reflect.DeepEqual(res.Policies, want) {
		t.Errorf("Policies = %+v, want %+v", res.Policies, want)
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error
	}{
		{
			name: "a marked file that is not YAML is an error naming the file",
			files: map[string]string{
				"apps/podinfo/deployment.yaml": deployment,
				"apps/broken.yaml":             "image: x:1 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n  - : [oops\n",
			},
			want: []string{"apps/broken.yaml", "parse"},
		},
		{
			name:  "a marker that is not valid JSON is an error naming the file and line",
			files: map[string]string{"a.yaml": "kind: X\nimage: x:1 # {\"$imagepolicy\": flux-system:podinfo}\n"},
			want:  []string{"a.yaml:2", "not a JSON object"},
		},
		{
			name:  "a marker with an unknown field is an error",
			files: map[string]string{"a.yaml": "image: x:1 # {\"$imagepolicy\": \"flux-system:podinfo:version\"}\n"},
			want:  []string{"a.yaml:1", `unknown field "version"`},
		},
		{
			name:  "a digest marker for a policy without a digest is an error",
			files: map[string]string{"a.yaml": "digest: sha256:1 # {\"$imagepolicy\": \"flux-system:podinfo:digest\"}\n"},
			want:  []string{"a.yaml:1", "has none"},
		},
		{
			name:  "a marked block scalar is refused",
			files: map[string]string{"a.yaml": "image: | # {\"$imagepolicy\": \"flux-system:podinfo\"}\n  x:1\n"},
			want:  []string{"a.yaml:1", "block scalar"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Apply(toBytes(tt.files), "", testNamespace, testPolicies)
			if err == nil {
				t.Fatalf("Apply succeeded with %d changed files, want an error", len(res.Files))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if len(res.Files) != 0 || len(res.Changes) != 0 {
				t.Errorf("got a partial result %+v alongside the error", res)
			}
		})
	}
}

func TestAMarkerNamingAMissingPolicyFailsTheWholeRun(t *testing.T) {
	files := toBytes(map[string]string{
		"apps/podinfo/deployment.yaml": deployment,
		"apps/other.yaml":              "a: 1\nimage: x:1 # {\"$imagepolicy\": \"flux-system:nope\"}\ntag: 1 # {\"$imagepolicy\": \"team:gone:tag\"}\n",
	})
	res, err := Apply(files, "", testNamespace, testPolicies)
	if err == nil {
		t.Fatal("Apply succeeded, want a MissingPolicyError")
	}
	if len(res.Files) != 0 || len(res.Changes) != 0 {
		t.Errorf("the present policy was applied anyway: %+v", res)
	}
	var mpe *MissingPolicyError
	if !errors.As(err, &mpe) {
		t.Fatalf("error %v is not a *MissingPolicyError", err)
	}
	want := MissingPolicyError{File: "apps/other.yaml", Line: 2, Marker: "flux-system:nope", Policy: "flux-system/nope"}
	if *mpe != want {
		t.Errorf("got %+v, want %+v", *mpe, want)
	}
	for _, w := range []string{"apps/other.yaml:2", `"flux-system:nope"`, "apps/other.yaml:3", `"team:gone:tag"`, "team/gone"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestResultRendersFluxStyleCommitTemplates(t *testing.T) {
	files := toBytes(map[string]string{
		"apps/podinfo/deployment.yaml": deployment,
		"apps/redis.yaml":              "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: redis\nspec:\n  image: docker.io/library/redis:7.0.0 # {\"$imagepolicy\": \"flux-system:redis\"}\n",
	})
	res, err := Apply(files, "", testNamespace, testPolicies)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	tests := []struct {
		name, template, want string
	}{
		{
			name:     "the list of changes",
			template: `{{range .Changes}}{{.OldValue}} -> {{.NewValue}} ({{.Setter}}){{"\n"}}{{end}}`,
			want: "ghcr.io/stefanprodan/podinfo:6.4.0 -> ghcr.io/stefanprodan/podinfo:6.5.0 (flux-system:podinfo)\n" +
				"docker.io/library/redis:7.0.0 -> docker.io/library/redis:7.2.4 (flux-system:redis)\n",
		},
		{
			name: "the changes by file and object",
			template: `{{ range $file, $objs := .FileChanges }}{{ $file }}:{{"\n"}}` +
				`{{ range $obj, $changes := $objs }}- {{ $obj.Kind }}/{{ $obj.Name }}` +
				`{{ range $changes }} {{ .NewValue }}{{ end }}{{"\n"}}{{ end }}{{ end }}`,
			want: "apps/podinfo/deployment.yaml:\n- Deployment/podinfo ghcr.io/stefanprodan/podinfo:6.5.0\n" +
				"apps/redis.yaml:\n- StatefulSet/redis docker.io/library/redis:7.2.4\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := template.Must(template.New("msg").Parse(tt.template))
			var b strings.Builder
			if err := tmpl.Execute(&b, res); err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestReferencedPoliciesListsEachPolicyOnce(t *testing.T) {
	files := toBytes(map[string]string{
		"apps/podinfo/deployment.yaml": deployment,
		"apps/values.yaml":             "name: x # {\"$imagepolicy\": \"podinfo:name\"}\ntag: 1 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\napi: a:1 # {\"$imagepolicy\": \"apps:api\"}\n",
		"other/ignored.yaml":           "image: x # {\"$imagepolicy\": \"flux-system:elsewhere\"}\n",
	})
	got, err := ReferencedPolicies(files, "apps", testNamespace)
	if err != nil {
		t.Fatalf("ReferencedPolicies: %v", err)
	}
	// "podinfo:name" is namespace "podinfo", policy "name", as in Flux.
	want := []string{"apps/api", "flux-system/podinfo", "podinfo/name"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func toBytes(files map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(files))
	for p, s := range files {
		out[p] = []byte(s)
	}
	return out
}
