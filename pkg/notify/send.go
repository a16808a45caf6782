package notify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"sluice.dev/sluice/pkg/egress"
)

// maxAnswerBytes is how much of an answer is read: enough for the JSON
// of a failure.
const maxAnswerBytes = 64 << 10

// delivery is a queued post and what the logs say about it.
type delivery struct {
	post
	client  *http.Client
	timeout time.Duration
	// provider is the Provider or AlertProvider posted to.
	provider providerKey
	typ      string
	// objectKind and object are the kind and namespace/name of what the
	// event is about.
	objectKind, object string
	reason             string
	// generation and secretVersion are the provider's and its Secret's,
	// for the provider's status.
	generation    int64
	secretVersion string
	// attempt counts the posts so far, this one included; wait is the
	// backoff before the next retry (0: the initial one).
	attempt int
	wait    time.Duration
}

func (d delivery) keysAndValues(more ...any) []any {
	return append([]any{lowerFirst(d.provider.kind), d.provider.name.String(), "type", d.typ, lowerFirst(d.objectKind), d.object, "reason", d.reason}, more...)
}

// Start posts queued alerts until ctx is done. Alerts still queued then
// are dropped. It may be called once.
func (d *Dispatcher) Start(ctx context.Context) error {
	if !d.started.CompareAndSwap(false, true) {
		return errors.New("notify: the dispatcher is already started")
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.routeEvents(ctx) })
	for range d.opts.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case dl := <-d.queue:
					d.deliver(ctx, dl)
				}
			}
		})
	}
	wg.Wait()
	if n := len(d.queue); n > 0 {
		d.opts.Log.Info("alerts dropped on shutdown", "count", n)
	}
	return nil
}

// NeedLeaderElection lets the workers run on every replica: only the
// leader reconciles, so only the leader queues alerts, and the queue is
// drained from the moment it does.
func (d *Dispatcher) NeedLeaderElection() bool { return false }

// deliver posts once. A failure worth retrying goes back on the queue
// after an exponential backoff, or the wait a rate-limited service asked
// for, so that a service that is down never holds a worker that another
// service's alerts need. It logs one line when it gives up.
func (d *Dispatcher) deliver(ctx context.Context, dl delivery) {
	b := d.opts.Backoff
	attempt := max(dl.attempt, 1)
	retryAfter, err := d.send(ctx, dl)
	if err == nil {
		d.opts.Log.V(1).Info("alert sent", dl.keysAndValues("attempts", attempt)...)
		d.record(dl, nil)
		return
	}
	var permanent *permanentError
	if errors.As(err, &permanent) || attempt >= b.Attempts || ctx.Err() != nil {
		d.opts.Log.Error(err, "alert dropped", dl.keysAndValues("attempts", attempt)...)
		if ctx.Err() == nil {
			d.record(dl, fmt.Errorf("%s of %s %s not delivered (attempt %d of %d): %w", dl.reason, dl.objectKind, dl.object, attempt, b.Attempts, err))
		}
		return
	}
	wait := dl.wait
	if wait == 0 {
		wait = b.Initial
	}
	pause := wait
	if retryAfter > 0 {
		pause = retryAfter
	}
	pause = min(pause, b.Max)
	d.opts.Log.V(1).Info("alert not sent, retrying", dl.keysAndValues("attempt", attempt, "retryIn", pause, "error", err.Error())...)
	next := dl
	next.attempt, next.wait = attempt+1, min(wait*2, b.Max)
	time.AfterFunc(pause, func() {
		if ctx.Err() != nil {
			d.opts.Log.Error(ctx.Err(), "alert dropped", dl.keysAndValues("attempts", attempt)...)
			return
		}
		select {
		case d.queue <- next:
		default:
			err := errors.New("the alert queue is full")
			d.opts.Log.Error(err, "alert dropped", dl.keysAndValues("attempts", attempt)...)
			d.record(dl, err)
		}
	})
}

// permanentError is a failure that a retry would repeat: the service
// refused the request.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// send posts once. It returns the wait a rate-limited service asked for.
func (d *Dispatcher) send(ctx context.Context, dl delivery) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(dl.timeout, d.opts.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.url, bytes.NewReader(dl.body))
	if err != nil {
		return 0, &permanentError{errors.New("cannot build the request to the address")}
	}
	for k, v := range dl.header {
		req.Header[k] = v
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	req.Header.Set("User-Agent", "sluice")
	resp, err := dl.client.Do(req)
	if err != nil {
		if errors.Is(err, egress.ErrOwnEndpoint) {
			// The address, or its redirect, is the operator itself:
			// asking again gets the same answer.
			return 0, &permanentError{redact(err)}
		}
		return 0, redact(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return 0, fmt.Errorf("read the answer: %w", redact(err))
	}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests:
		return parseRetryAfter(resp.Header.Get("Retry-After"), body, time.Now()), fmt.Errorf("rate limited: %s", resp.Status)
	case code == http.StatusRequestTimeout || code >= 500:
		return 0, fmt.Errorf("%s: %s", resp.Status, snippet(body))
	case code < 200 || code > 299:
		return 0, &permanentError{fmt.Errorf("%s: %s", resp.Status, snippet(body))}
	}
	if dl.check != nil {
		if err := dl.check(body); err != nil {
			return 0, &permanentError{err}
		}
	}
	return 0, nil
}

// redact drops the URL from a transport error: a webhook URL is a
// credential.
func redact(err error) error {
	var u *url.Error
	if errors.As(err, &u) {
		return fmt.Errorf("%s: %w", u.Op, u.Err)
	}
	return err
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date, or else
// Discord's retry_after (seconds) in the body.
func parseRetryAfter(header string, body []byte, now time.Time) time.Duration {
	header = strings.TrimSpace(header)
	if s, err := strconv.ParseFloat(header, 64); err == nil && s > 0 {
		return seconds(s)
	}
	if t, err := http.ParseTime(header); err == nil {
		return max(t.Sub(now), 0)
	}
	var discord struct {
		RetryAfter float64 `json:"retry_after"`
	}
	if json.Unmarshal(body, &discord) == nil && discord.RetryAfter > 0 {
		return seconds(discord.RetryAfter)
	}
	return 0
}

// seconds converts to a duration in milliseconds, capped at an hour: past
// any backoff cap, and in range of the conversion.
func seconds(s float64) time.Duration {
	return time.Duration(math.Round(min(s, 3600)*1000)) * time.Millisecond
}

// snippet is the start of an answer, for errors.
func snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return "no body"
	}
	return cutRunes(s, 200)
}

// lowerFirst is a kind as a log key: AlertProvider is alertProvider.
func lowerFirst(kind string) string {
	if kind == "" {
		return "object"
	}
	return strings.ToLower(kind[:1]) + kind[1:]
}
