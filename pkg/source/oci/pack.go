package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// DefaultMaxSize bounds what one layer may unpack to, in bytes: the
// files stay in memory for the appliers of the same process.
const DefaultMaxSize int64 = 256 << 20

// sourceIgnore is the file whose patterns, in the folder holding it,
// leave files out of an extracted layer, as in Flux.
const sourceIgnore = ".sourceignore"

// DefaultIgnore returns Flux's default exclusions of an extracted layer:
// version-control files, CI configuration and binary media that do not
// belong in manifests. Each call returns a new slice.
func DefaultIgnore() []string {
	return append(DefaultPushIgnore(),
		".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml",
		"cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
		"**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml")
}

// DefaultPushIgnore returns what `flux push artifact` leaves out unless
// told otherwise: version-control files and binary media. Each call
// returns a new slice.
func DefaultPushIgnore() []string {
	return []string{
		".git/", ".gitignore", ".gitmodules", ".gitattributes",
		"*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
	}
}

// Pack archives path as Flux's content layer: a tar+gzip of the regular
// files and folders under it (or of the one file it names) by relative
// slash path. Files matching ignore (.gitignore patterns, relative to
// path) and symbolic links are left out. Owners, times and modes are
// cleared, so that the same files always pack to the same bytes, and so
// to the same digest.
func Pack(root string, ignore []string) ([]byte, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", root, err)
	}
	var patterns []gitignore.Pattern
	for _, p := range ignore {
		patterns = append(patterns, parsePatterns(p, nil)...)
	}
	matcher := gitignore.NewMatcher(patterns)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	add := func(name string, full string, dir bool) error {
		hdr := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if dir {
			hdr.Name, hdr.Mode, hdr.Typeflag = name+"/", 0o755, tar.TypeDir
			return tw.WriteHeader(hdr)
		}
		data, err := os.ReadFile(full)
		if err != nil {
			return err
		}
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	}
	if info.Mode().IsRegular() {
		err = add(filepath.Base(root), root, false)
	} else {
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil || rel == "." {
				return err
			}
			rel = filepath.ToSlash(rel)
			switch {
			case matcher.Match(strings.Split(rel, "/"), d.IsDir()):
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			case d.IsDir():
				return add(rel, p, true)
			case d.Type().IsRegular():
				return add(rel, p, false)
			}
			// Symbolic links and special files: an applier must not
			// follow them, and Flux leaves them out too.
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", root, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("pack %s: %w", root, err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("pack %s: %w", root, err)
	}
	return buf.Bytes(), nil
}

// Unpack reads a tar+gzip layer into memory: its regular files by clean
// slash path. Symbolic links and other special files are skipped, as
// Flux skips them. A path that leaves the archive's root, or content over
// limit bytes in all (0 means DefaultMaxSize), is an error wrapping
// ErrLayer.
func Unpack(r io.Reader, limit int64) (map[string][]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not a tar+gzip: %w", ErrLayer, err)
	}
	defer func() { _ = gz.Close() }()
	tr := tar.NewReader(gz)
	files := map[string][]byte{}
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read the tar: %w", ErrLayer, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimLeft(hdr.Name, "/"))
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			return nil, fmt.Errorf("%w: %q leaves the archive's root", ErrLayer, hdr.Name)
		}
		if total += hdr.Size; total > limit {
			return nil, fmt.Errorf("%w: the files are over %d bytes", ErrLayer, limit)
		}
		data, err := io.ReadAll(io.LimitReader(tr, hdr.Size))
		if err != nil {
			return nil, fmt.Errorf("%w: read %s: %w", ErrLayer, name, err)
		}
		files[name] = data
	}
}

// Filter returns the files an extracted layer keeps, as Flux builds its
// artifact: Flux's default exclusions, or ignore in their place when it
// is not nil, and the .sourceignore files of the tree, each in its own
// folder. ignore comes last, so that it can re-include what a
// .sourceignore leaves out.
func Filter(files map[string][]byte, ignore *string) map[string][]byte {
	var patterns []gitignore.Pattern
	if ignore == nil {
		patterns = parsePatterns(strings.Join(DefaultIgnore(), "\n"), nil)
	}
	// Shallow folders first: a deeper .sourceignore refines them.
	names := slices.SortedFunc(maps.Keys(files), func(a, b string) int {
		if d := strings.Count(a, "/") - strings.Count(b, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, n := range names {
		if path.Base(n) != sourceIgnore {
			continue
		}
		var domain []string
		if dir := path.Dir(n); dir != "." {
			domain = strings.Split(dir, "/")
		}
		patterns = append(patterns, parsePatterns(string(files[n]), domain)...)
	}
	if ignore != nil {
		patterns = append(patterns, parsePatterns(*ignore, nil)...)
	}
	matcher := gitignore.NewMatcher(patterns)
	kept := make(map[string][]byte, len(files))
	for n, data := range files {
		if !ignored(matcher, strings.Split(n, "/")) {
			kept[n] = data
		}
	}
	return kept
}

// ignored reports whether a file, or a folder above it, matches: as in
// Git, a file in an ignored folder cannot be re-included.
func ignored(m gitignore.Matcher, parts []string) bool {
	for i := 1; i < len(parts); i++ {
		if m.Match(parts[:i], true) {
			return true
		}
	}
	return m.Match(parts, false)
}

func parsePatterns(rules string, domain []string) []gitignore.Pattern {
	var out []gitignore.Pattern
	for line := range strings.SplitSeq(rules, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, gitignore.ParsePattern(line, domain))
	}
	return out
}

// Digest is sha256 over the sorted paths and contents, each
// length-prefixed so that no two trees share a digest by concatenation:
// the digest of a GitRepository's artifact, for files from a layer.
func Digest(files map[string][]byte) string {
	h := sha256.New()
	for _, n := range slices.Sorted(maps.Keys(files)) {
		_, _ = fmt.Fprintf(h, "%d:%s%d:", len(n), n, len(files[n]))
		_, _ = h.Write(files[n])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// WriteFiles writes files under dir, creating the folders they need. A
// path that leaves dir is refused.
func WriteFiles(dir string, files map[string][]byte) error {
	for _, n := range slices.Sorted(maps.Keys(files)) {
		local := filepath.FromSlash(n)
		if !filepath.IsLocal(local) {
			return fmt.Errorf("write %q: the path leaves %s", n, dir)
		}
		target := filepath.Join(dir, local)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", target, err)
		}
		if err := os.WriteFile(target, files[n], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", target, err)
		}
	}
	return nil
}
