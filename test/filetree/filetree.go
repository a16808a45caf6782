// Package filetree writes folders of files for tests: the content of an
// artifact, a chart or a Git commit.
package filetree

import (
	"os"
	"path/filepath"
	"testing"
)

// Write writes files (slash paths to contents) under a new temporary
// folder and returns it.
func Write(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
