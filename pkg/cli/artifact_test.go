package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/test/filetree"
	"sluice.dev/sluice/test/imageregistry"
)

func TestAPushedArtifactIsPulledBackAndTagged(t *testing.T) {
	t.Parallel()
	reg := imageregistry.New(t)
	url := "oci://" + reg.Image("manifests/app") + ":1.0.0"
	src := filetree.Write(t, map[string]string{"deploy.yaml": "kind: Deployment\n", "base/service.yaml": "kind: Service\n", ".git/HEAD": "ref: main\n", "logo.png": "png"})
	revision := "main@sha1:0123456789abcdef0123456789abcdef01234567"

	pushed := run(t, "push", "artifact", url, "--path", src, "--source", "https://github.com/org/app", "--revision", revision).mustSucceed(t)
	digest, ok := strings.CutPrefix(strings.TrimSpace(pushed.out), url+" pushed: ")
	if !ok || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("got output %q", pushed.out)
	}

	t.Run("the artifact has Flux's media types and annotations", func(t *testing.T) {
		a, err := oci.Fetch(t.Context(), oci.FetchOptions{URL: "oci://" + reg.Image("manifests/app"), Ref: oci.Ref{Tag: "1.0.0"}, MediaType: oci.ContentMediaType})
		if err != nil {
			t.Fatal(err)
		}
		if a.Revision != "1.0.0@"+digest || a.Annotations[oci.SourceAnnotation] != "https://github.com/org/app" || a.Annotations[oci.RevisionAnnotation] != revision || a.Annotations[oci.CreatedAnnotation] == "" {
			t.Errorf("got revision %s and annotations %v", a.Revision, a.Annotations)
		}
	})
	t.Run("pull writes the files, without what the push left out", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "pulled")
		r := run(t, "pull", "artifact", url, "--output", out).mustSucceed(t)
		want := url + " pulled into " + out + ": revision 1.0.0@" + digest + `, source "https://github.com/org/app", source revision "` + revision + `"` + "\n"
		if r.out != want {
			t.Errorf("got output %q, want %q", r.out, want)
		}
		for file, content := range map[string]string{"deploy.yaml": "kind: Deployment\n", "base/service.yaml": "kind: Service\n"} {
			if data, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(file))); err != nil || string(data) != content {
				t.Errorf("%s: got %q, %v", file, data, err)
			}
		}
		for _, left := range []string{".git/HEAD", "logo.png"} {
			if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(left))); !os.IsNotExist(err) {
				t.Errorf("%s was pushed: %v", left, err)
			}
		}
	})
	t.Run("tag gives the same digest a new tag, which pulls", func(t *testing.T) {
		r := run(t, "tag", "artifact", url, "--tag", "stable,latest").mustSucceed(t)
		if want := url + " tagged stable: " + digest + "\n" + url + " tagged latest: " + digest + "\n"; r.out != want {
			t.Errorf("got output %q, want %q", r.out, want)
		}
		out := t.TempDir()
		run(t, "pull", "artifact", "oci://"+reg.Image("manifests/app")+":stable", "--output", out).mustSucceed(t)
		if _, err := os.Stat(filepath.Join(out, "deploy.yaml")); err != nil {
			t.Error(err)
		}
	})
	t.Run("pull takes a digest too", func(t *testing.T) {
		out := t.TempDir()
		r := run(t, "pull", "artifact", "oci://"+reg.Image("manifests/app")+"@"+digest, "--output", out).mustSucceed(t)
		if !strings.Contains(r.out, "revision "+digest+",") {
			t.Errorf("got output %q", r.out)
		}
	})
}

func TestArtifactCommandsUseTheGivenCredentials(t *testing.T) {
	t.Parallel()
	reg := imageregistry.New(t, imageregistry.WithBasicAuth())
	url := "oci://" + reg.Image("app") + ":1.0.0"
	src := filetree.Write(t, map[string]string{"deploy.yaml": "kind: Deployment\n"})
	push := []string{"push", "artifact", url, "--path", src, "--source", "s", "--revision", "r"}
	if r := run(t, append(push, "--creds", imageregistry.Username+":wrong")...); r.error == nil || !strings.Contains(r.error.Error(), "authentication failed") {
		t.Fatalf("wrong credentials: got %v", r.error)
	}
	run(t, append(push, "--creds", imageregistry.Username+":"+imageregistry.Password)...).mustSucceed(t)
	r := run(t, "pull", "artifact", url, "--output", t.TempDir(), "--creds", imageregistry.Username+":"+imageregistry.Password).mustSucceed(t)
	if !strings.Contains(r.out, "revision 1.0.0@sha256:") {
		t.Errorf("got output %q", r.out)
	}
}

func TestArtifactCommandsRefuseBadInput(t *testing.T) {
	t.Parallel()
	src := filetree.Write(t, map[string]string{"deploy.yaml": "x"})
	push := func(url string, more ...string) []string {
		return append([]string{"push", "artifact", url, "--path", src, "--source", "s", "--revision", "r"}, more...)
	}
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"a push needs a tag", push("oci://127.0.0.1:1/app"), "needs a tag or digest"},
		{"a push to a digest is refused", push("oci://127.0.0.1:1/app@sha256:" + strings.Repeat("a", 64)), "must name a tag"},
		{"a URL must start with oci://", push("127.0.0.1:1/app:1.0.0"), "must start with oci://"},
		{"a push needs files", []string{"push", "artifact", "oci://127.0.0.1:1/app:1", "--path", "/nonexistent", "--source", "s", "--revision", "r"}, "--path: stat /nonexistent"},
		{"a push needs --revision", []string{"push", "artifact", "oci://127.0.0.1:1/app:1", "--path", src, "--source", "s"}, `required flag(s) "revision" not set`},
		{"--creds is USERNAME:PASSWORD", push("oci://127.0.0.1:1/app:1", "--creds", "token"), "--creds must be USERNAME:PASSWORD"},
		{"a pull needs --output", []string{"pull", "artifact", "oci://127.0.0.1:1/app:1"}, `required flag(s) "output" not set`},
		{"a tag needs --tag", []string{"tag", "artifact", "oci://127.0.0.1:1/app:1"}, `required flag(s) "tag" not set`},
		{"a new tag must be a tag", []string{"tag", "artifact", "oci://127.0.0.1:1/app:1", "--tag", "not a tag"}, `--tag "not a tag" is not a valid tag`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tt.args...)
			if r.error == nil || !strings.Contains(r.error.Error(), tt.err) {
				t.Errorf("got error %v, want one with %q", r.error, tt.err)
			}
			if r.out != "" {
				t.Errorf("a refused command printed %q", r.out)
			}
		})
	}
}
