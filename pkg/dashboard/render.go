package dashboard

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// layout is the page frame every page template is parsed with.
const layout = "layout.html"

// pageFiles are the pages, each parsed with the layout into its own set,
// since each defines "content" its own way.
var pageFiles = []string{"overview.html", "canary.html", "sync.html", "error.html"}

func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"lower": strings.ToLower,
	}
	pages := map[string]*template.Template{}
	for _, name := range pageFiles {
		t, err := template.New(layout).Funcs(funcs).ParseFS(templateFiles, "templates/"+layout, "templates/"+name)
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// page is what the layout renders around a page's content.
type page struct {
	Title string
	// Nav is the navigation entry that is current: "overview" or "sync".
	Nav   string
	Token string
	// Live is the address of the page's event stream; none when empty.
	Live string
	// Notices are reads that failed without stopping the page, such as
	// a denied list of Deployments.
	Notices []string
	Body    any
}

// render executes the template name of the page file file into a buffer,
// so that a failure never sends half a page.
func (h *handler) render(file, name string, data any) ([]byte, error) {
	t, ok := h.pages[file]
	if !ok {
		return nil, fmt.Errorf("no page template %s", file)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("render %s of %s: %w", name, file, err)
	}
	return b.Bytes(), nil
}

// writePage renders a whole page with status.
func (h *handler) writePage(w http.ResponseWriter, r *http.Request, status int, file string, p page) {
	p.Token = h.opts.Token
	body, err := h.render(file, layout, p)
	if err != nil {
		h.logError(err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, r, status, "text/html; charset=utf-8", body)
}

// errorPage renders a page that says only message, with status: 404 for
// an unknown page or Canary, 403 for a read the API server forbids, with
// its own words.
func (h *handler) errorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	h.writePage(w, r, status, "error.html", page{Title: http.StatusText(status), Body: errorBody{Status: status, Text: http.StatusText(status), Message: message}})
}

type errorBody struct {
	Status  int
	Text    string
	Message string
}

// writeBody writes body, gzip-compressed when the client accepts it:
// the overview of a thousand Canaries is a few hundred kilobytes of
// table, and a tenth of that compressed.
func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	header := w.Header()
	header.Set("Content-Type", contentType)
	header.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r) || len(body) < 512 {
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	header.Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	gz := gzip.NewWriter(w)
	_, _ = gz.Write(body)
	_ = gz.Close()
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// asset serves an embedded stylesheet or script.
func (h *handler) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	body, err := fs.ReadFile(h.static, name)
	if err != nil {
		h.errorPage(w, r, http.StatusNotFound, fmt.Sprintf("There is no asset %s.", name))
		return
	}
	contentType := mime.TypeByExtension(path.Ext(name))
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	// The assets change only with the binary: a browser checks again on
	// each load, and their hash answers it with a 304.
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeBody(w, r, http.StatusOK, contentType, body)
}

// actionResult is an action's answer to the page's script.
type actionResult struct {
	// OK is true when the operator carried the action out.
	OK bool `json:"ok"`
	// Message is what the page shows: the operator's answer, or why the
	// action failed, with the API server's own words.
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// apiStatus is the page status for an error of the API server: its own
// 403, 404 and 401, 504 when it did not answer in time, else 502.
func apiStatus(err error) int {
	switch {
	case apierrors.IsForbidden(err):
		return http.StatusForbidden
	case apierrors.IsNotFound(err):
		return http.StatusNotFound
	case apierrors.IsUnauthorized(err):
		return http.StatusUnauthorized
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case apierrors.IsBadRequest(err), apierrors.IsInvalid(err):
		return http.StatusBadRequest
	case apierrors.IsConflict(err):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

// apiErrorPage renders the error of a read the page needed, with the
// status the API server's answer calls for.
func (h *handler) apiErrorPage(w http.ResponseWriter, r *http.Request, err error, message string) {
	h.errorPage(w, r, apiStatus(err), message)
}
