package oci_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sluice.dev/sluice/pkg/source/oci"
	"sluice.dev/sluice/test/filetree"
)

// tarGz builds a layer by hand, for archives Pack would never make.
func tarGz(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range entries {
		body := strings.Repeat("x", int(h.Size))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func names(files map[string][]byte) []string {
	return slices.Sorted(maps.Keys(files))
}

func TestPackAndUnpack(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		link   string
		ignore []string
		want   []string
	}{
		{
			name:  "every file comes back by its relative slash path",
			files: map[string]string{"deploy.yaml": "kind: Deployment", "apps/web/service.yaml": "kind: Service"},
			want:  []string{"apps/web/service.yaml", "deploy.yaml"},
		},
		{
			name:   "the push defaults leave out Git metadata and binary media",
			files:  map[string]string{"deploy.yaml": "a", ".git/config": "b", ".gitignore": "c", "logo.png": "d", "charts/old.tar.gz": "e"},
			ignore: oci.DefaultPushIgnore(),
			want:   []string{"deploy.yaml"},
		},
		{
			name:   "an ignore pattern leaves out a whole folder",
			files:  map[string]string{"deploy.yaml": "a", "tests/case.yaml": "b", "tests/deep/more.yaml": "c"},
			ignore: []string{"tests/"},
			want:   []string{"deploy.yaml"},
		},
		{
			name:  "a symbolic link is left out",
			files: map[string]string{"deploy.yaml": "a"},
			link:  "secret.yaml",
			want:  []string{"deploy.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filetree.Write(t, tt.files)
			if tt.link != "" {
				if err := os.Symlink("/etc/passwd", filepath.Join(dir, tt.link)); err != nil {
					t.Fatal(err)
				}
			}
			layer, err := oci.Pack(dir, tt.ignore)
			if err != nil {
				t.Fatal(err)
			}
			files, err := oci.Unpack(bytes.NewReader(layer), 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(files); !slices.Equal(got, tt.want) {
				t.Fatalf("got files %q, want %q", got, tt.want)
			}
			for _, n := range tt.want {
				if string(files[n]) != tt.files[n] {
					t.Errorf("%s holds %q, want %q", n, files[n], tt.files[n])
				}
			}
		})
	}
}

func TestPackingTheSameFilesGivesTheSameBytes(t *testing.T) {
	files := map[string]string{"b.yaml": "b", "a/c.yaml": "c", "a/d.yaml": "d"}
	first, err := oci.Pack(filetree.Write(t, files), nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := oci.Pack(filetree.Write(t, files), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatal("two packs of the same files differ: their digests would too")
	}
}

func TestPackingOneFileArchivesItByName(t *testing.T) {
	dir := filetree.Write(t, map[string]string{"all.yaml": "kind: List"})
	layer, err := oci.Pack(filepath.Join(dir, "all.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := oci.Unpack(bytes.NewReader(layer), 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(files["all.yaml"]) != "kind: List" || len(files) != 1 {
		t.Fatalf("got %q", names(files))
	}
}

func TestUnpackRefuses(t *testing.T) {
	tests := []struct {
		name  string
		layer []byte
		limit int64
		err   string
	}{
		{"a layer that is not gzip", []byte("plain text"), 0, "not a tar+gzip"},
		{"a path that climbs out of the root", tarGz(t, &tar.Header{Name: "../../etc/cron.d/x", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}), 0, "leaves the archive's root"},
		{"files over the size limit", tarGz(t, &tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 6, Mode: 0o644}, &tar.Header{Name: "b", Typeflag: tar.TypeReg, Size: 6, Mode: 0o644}), 10, "over 10 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oci.Unpack(bytes.NewReader(tt.layer), tt.limit)
			if !errors.Is(err, oci.ErrLayer) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want ErrLayer with %q", err, tt.err)
			}
		})
	}
}

func TestUnpackSkipsLinksAndCleansPaths(t *testing.T) {
	layer := tarGz(t,
		&tar.Header{Name: "./app/deploy.yaml", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644},
		&tar.Header{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "app/passwd", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		&tar.Header{Name: "/abs.yaml", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644},
	)
	files, err := oci.Unpack(bytes.NewReader(layer), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(files); !slices.Equal(got, []string{"abs.yaml", "app/deploy.yaml"}) {
		t.Fatalf("got %q", got)
	}
}

func TestFilter(t *testing.T) {
	ptr := func(s string) *string { return &s }
	tests := []struct {
		name   string
		files  map[string]string
		ignore *string
		want   []string
	}{
		{
			name:  "the defaults leave out VCS, CI and binary files",
			files: map[string]string{"deploy.yaml": "", ".git/HEAD": "", ".github/workflows/ci.yaml": "", "img/logo.png": "", "sub/.sops.yaml": "", ".gitlab-ci.yml": ""},
			want:  []string{"deploy.yaml"},
		},
		{
			name:  "a .sourceignore applies in its own folder only",
			files: map[string]string{"apps/.sourceignore": "test.yaml\n", "apps/test.yaml": "", "apps/deploy.yaml": "", "test.yaml": ""},
			want:  []string{"apps/.sourceignore", "apps/deploy.yaml", "test.yaml"},
		},
		{
			name:   "spec.ignore replaces the defaults",
			files:  map[string]string{"deploy.yaml": "", "img/logo.png": "", "docs/readme.md": ""},
			ignore: ptr("docs/\n"),
			want:   []string{"deploy.yaml", "img/logo.png"},
		},
		{
			name:   "spec.ignore re-includes what a .sourceignore leaves out",
			files:  map[string]string{".sourceignore": "test.yaml\n", "test.yaml": "", "deploy.yaml": ""},
			ignore: ptr("!test.yaml\n"),
			want:   []string{".sourceignore", "deploy.yaml", "test.yaml"},
		},
		{
			name:   "a file in an ignored folder stays out",
			files:  map[string]string{"tests/keep.yaml": "", "deploy.yaml": ""},
			ignore: ptr("tests/\n!tests/keep.yaml\n"),
			want:   []string{"deploy.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string][]byte{}
			for n, content := range tt.files {
				files[n] = []byte(content)
			}
			if got := names(oci.Filter(files, tt.ignore)); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteFilesRefusesAPathOutsideTheFolder(t *testing.T) {
	dir := t.TempDir()
	if err := oci.WriteFiles(dir, map[string][]byte{"../escape.yaml": []byte("x")}); err == nil {
		t.Fatal("a path outside the folder was written")
	}
	if err := oci.WriteFiles(dir, map[string][]byte{"apps/deploy.yaml": []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "apps", "deploy.yaml")); err != nil || string(data) != "x" {
		t.Fatalf("got %q, %v", data, err)
	}
}
