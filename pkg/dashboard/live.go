package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	syncv1 "sluice.dev/sluice/api/sync/v1"
	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
)

// A page's live stream is one server-sent event stream over one watch:
// the server re-renders only what changed and sends it as an event,
// which the page's script swaps in. There is no polling: an idle page
// costs one open watch, and the watch ends when the tab goes (the
// request's context).
//
// The events:
//   - swap: an element's new HTML; the script replaces the element with
//     the same id, or appends a new row to the overview's table;
//   - remove: the id of an element to remove;
//   - only: after a re-list, the JSON list of the ids of the rows that
//     remain; the script removes the other rows;
//   - fail: why the stream ended for good, such as a watch that RBAC
//     forbids; the script stops the stream and shows it.

// Pauses of the live streams.
const (
	// rewatchDelay spaces out new watches after one failed, so that an
	// API server that refuses watches is not asked again in a tight
	// loop.
	rewatchDelay = time.Second
	// heartbeat is how often an idle stream sends a comment, so that a
	// proxy in front of the dashboard does not close it as idle.
	heartbeat = 30 * time.Second
	// coalesce gathers the changes that come together, such as the
	// several writes of one analysis step, into one render.
	coalesce = 200 * time.Millisecond
)

// eventStream writes server-sent events.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startStream(w http.ResponseWriter) (*eventStream, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// Not compressed: each event must reach the page as it is sent.
	w.WriteHeader(http.StatusOK)
	s := &eventStream{w: w, rc: http.NewResponseController(w)}
	// A stream that broke is opened again by the browser after 2 s.
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return nil, err
	}
	return s, s.rc.Flush()
}

// send writes one event whose data is data, line by line.
func (s *eventStream) send(event, data string) error {
	var b strings.Builder
	b.WriteString("event: " + event + "\n")
	for line := range strings.SplitSeq(data, "\n") {
		b.WriteString("data: " + strings.TrimRight(line, "\r") + "\n")
	}
	b.WriteString("\n")
	if _, err := fmt.Fprint(s.w, b.String()); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *eventStream) ping() error {
	if _, err := fmt.Fprint(s.w, ": ping\n\n"); err != nil {
		return err
	}
	return s.rc.Flush()
}

// watcher is one stream's watch: of list's kind with opts, from rv,
// re-listing when the API server says rv expired.
type watcher struct {
	h       *handler
	newList func() client.ObjectList
	opts    []client.ListOption
	// relist reads the state again after rv expired and sends what it
	// must; it returns the resource version to watch from.
	relist func(ctx context.Context) (string, error)
	// changed handles an added, modified or deleted object.
	changed func(ctx context.Context, typ watch.EventType, obj client.Object) error
	// flush, when set, runs once the changes that came together have
	// been handled.
	flush func(ctx context.Context) error
}

// run watches until ctx ends or the stream breaks. A watch that the API
// server closes (its timeout) is opened again from the last resource
// version; a resource version that expired is re-listed first.
func (wt *watcher) run(ctx context.Context, s *eventStream, rv string) error {
	ping := time.NewTicker(heartbeat)
	defer ping.Stop()
	for ctx.Err() == nil {
		if rv == "" {
			var err error
			if rv, err = wt.relist(ctx); err != nil {
				return err
			}
		}
		opts := append([]client.ListOption{&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}}}, wt.opts...)
		w, err := wt.h.c.Watch(ctx, wt.newList(), opts...)
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				rv = ""
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			if permanent(err) {
				return fmt.Errorf("watch: %w", err)
			}
			wt.h.logError(fmt.Errorf("watch for a live page: %w", err))
			if !sleep(ctx, rewatchDelay) {
				return nil
			}
			continue
		}
		next, err := wt.consume(ctx, s, w, rv, ping.C)
		w.Stop()
		if err != nil {
			return err
		}
		rv = next
	}
	return nil
}

// consume handles the events of one watch until it closes, and returns
// the resource version to watch from next: "" to re-list.
func (wt *watcher) consume(ctx context.Context, s *eventStream, w watch.Interface, rv string, ping <-chan time.Time) (string, error) {
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case <-ping:
			if err := s.ping(); err != nil {
				return rv, err
			}
		case <-pending:
			pending = nil
			if err := wt.flush(ctx); err != nil {
				return rv, err
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				if pending != nil {
					if err := wt.flush(ctx); err != nil {
						return rv, err
					}
				}
				return rv, nil
			}
			switch ev.Type {
			case watch.Error:
				err := apierrors.FromObject(ev.Object)
				if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
					return "", nil
				}
				if permanent(err) {
					return rv, fmt.Errorf("watch: %w", err)
				}
				wt.h.logError(fmt.Errorf("watch for a live page: %w", err))
				sleep(ctx, rewatchDelay)
				return rv, nil
			case watch.Bookmark:
				if m, err := meta.Accessor(ev.Object); err == nil {
					rv = m.GetResourceVersion()
				}
			case watch.Added, watch.Modified, watch.Deleted:
				obj, ok := ev.Object.(client.Object)
				if !ok {
					continue
				}
				rv = obj.GetResourceVersion()
				if err := wt.changed(ctx, ev.Type, obj); err != nil {
					return rv, err
				}
				if wt.flush != nil && pending == nil {
					pending = time.After(coalesce)
				}
			}
		}
	}
}

// permanent says whether asking again cannot help: the user may not
// watch, or the kind is not served.
func permanent(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) ||
		apierrors.IsBadRequest(err) || apierrors.IsInvalid(err) || apierrors.IsMethodNotSupported(err)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// endStream tells the page why its stream ended, unless the page went
// away: the page's script then stops the stream rather than have the
// browser open it again and again.
func (h *handler) endStream(ctx context.Context, s *eventStream, err error) {
	if err == nil || ctx.Err() != nil {
		return
	}
	h.logError(fmt.Errorf("live page: %w", err))
	_ = s.send("fail", err.Error())
}

// liveOverview streams the overview's rows as their Canaries change: one
// watch of the Canaries of the filter's namespace.
func (h *handler) liveOverview(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	s, err := startStream(w)
	if err != nil {
		return
	}
	wt := &watcher{
		h:       h,
		newList: func() client.ObjectList { return &sluicev1beta1.CanaryList{} },
		opts:    []client.ListOption{client.InNamespace(f.Namespace)},
	}
	wt.relist = func(ctx context.Context) (string, error) {
		var list sluicev1beta1.CanaryList
		if err := h.c.List(ctx, &list, client.InNamespace(f.Namespace)); err != nil {
			return "", fmt.Errorf("list Canaries again: %w", err)
		}
		lk, _ := h.lookUp(ctx, f.Namespace, list.Items)
		body := overviewRows(list.Items, f, lk, h.now())
		ids := make([]string, 0, len(body.Rows))
		for _, row := range body.Rows {
			html, err := h.render("overview.html", "row", row)
			if err != nil {
				return "", err
			}
			if err := s.send("swap", string(html)); err != nil {
				return "", err
			}
			ids = append(ids, row.ID)
		}
		data, err := json.Marshal(ids)
		if err != nil {
			return "", err
		}
		return list.ResourceVersion, s.send("only", string(data))
	}
	wt.changed = func(ctx context.Context, typ watch.EventType, obj client.Object) error {
		cn, ok := obj.(*sluicev1beta1.Canary)
		if !ok {
			return nil
		}
		if typ == watch.Deleted || !f.matches(cn) {
			return s.send("remove", rowID(cn.Namespace, cn.Name))
		}
		lk, _ := h.lookUpOne(ctx, cn)
		html, err := h.render("overview.html", "row", newRow(cn, lk, h.now()))
		if err != nil {
			return err
		}
		return s.send("swap", string(html))
	}
	h.endStream(ctx, s, wt.run(ctx, s, r.URL.Query().Get("rv")))
}

// liveCanary streams a Canary's detail as it changes: one watch of that
// Canary alone (a field selector on its name). Each change reads its
// Events again, so that they come with the status that caused them.
func (h *handler) liveCanary(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	ctx := r.Context()
	s, err := startStream(w)
	if err != nil {
		return
	}
	key := client.ObjectKey{Namespace: ns, Name: name}
	var latest *sluicev1beta1.Canary
	deleted := false
	send := func(ctx context.Context) error {
		var d canaryDetail
		switch {
		case deleted:
			d = canaryDetail{Namespace: ns, Name: name, Deleted: true}
		case latest != nil:
			d = h.canaryDetail(ctx, latest)
		default:
			return nil
		}
		html, err := h.render("canary.html", "detail", d)
		if err != nil {
			return err
		}
		return s.send("swap", string(html))
	}
	wt := &watcher{
		h:       h,
		newList: func() client.ObjectList { return &sluicev1beta1.CanaryList{} },
		opts:    []client.ListOption{client.InNamespace(ns), client.MatchingFields{"metadata.name": name}},
		flush:   send,
	}
	wt.relist = func(ctx context.Context) (string, error) {
		// One list by name gives both the Canary and the collection's
		// resource version, which is what the watch goes on from.
		var list sluicev1beta1.CanaryList
		if err := h.c.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{"metadata.name": name}); err != nil {
			return "", fmt.Errorf("list Canary %s again: %w", key, err)
		}
		latest, deleted = nil, len(list.Items) == 0
		if !deleted {
			latest = &list.Items[0]
		}
		return list.ResourceVersion, send(ctx)
	}
	wt.changed = func(_ context.Context, typ watch.EventType, obj client.Object) error {
		cn, ok := obj.(*sluicev1beta1.Canary)
		if !ok {
			return nil
		}
		if typ == watch.Deleted {
			latest, deleted = nil, true
		} else {
			latest, deleted = cn, false
		}
		return nil
	}
	h.endStream(ctx, s, wt.run(ctx, s, r.URL.Query().Get("rv")))
}

// liveSync streams the sync page's section. It watches Kustomizations
// only, one watch as every page has: when one changes, the page's lists
// are read again and the section is sent whole. A Kustomization changes
// when its GitRepository's revision does, so a new commit shows; a
// HelmRelease or GitRepository change alone shows with the next
// Kustomization change, or on a reload.
func (h *handler) liveSync(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, err := startStream(w)
	if err != nil {
		return
	}
	send := func(ctx context.Context) error {
		body, err := h.readSync(ctx)
		if err != nil {
			body.Notices = append(body.Notices, listError("the sync objects", "", err))
		}
		html, err := h.render("sync.html", "sections", body)
		if err != nil {
			return err
		}
		return s.send("swap", string(html))
	}
	started := false
	wt := &watcher{
		h:       h,
		newList: func() client.ObjectList { return &syncv1.KustomizationList{} },
		changed: func(context.Context, watch.EventType, client.Object) error { return nil },
		flush:   send,
	}
	wt.relist = func(ctx context.Context) (string, error) {
		// A list of one item is enough for the resource version to
		// watch from.
		var list syncv1.KustomizationList
		if err := h.c.List(ctx, &list, client.Limit(1)); err != nil {
			return "", fmt.Errorf("list Kustomizations: %w", err)
		}
		// The page was rendered just before its stream started; after
		// an expired watch, the section is sent again.
		if started {
			if err := send(ctx); err != nil {
				return "", err
			}
		}
		started = true
		return list.ResourceVersion, nil
	}
	err = wt.run(ctx, s, "")
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	h.endStream(ctx, s, err)
}
