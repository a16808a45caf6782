// Package hook calls a Canary's webhooks with Flagger's payload and
// semantics: a POST of JSON that succeeds with a status from 200 to 202.
// The hooks of one call run concurrently, each with its own timeout and
// retries, and the whole call is bounded by its context.
package hook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	sluicev1beta1 "sluice.dev/sluice/api/v1beta1"
	"sluice.dev/sluice/pkg/egress"
)

// Result is the answer of one hook.
type Result struct {
	// Hook is the webhook's name.
	Hook string
	// StatusCode is the last HTTP status received; 0 if none was.
	StatusCode int
	// Err is set when no acceptable answer came: a transport error, a
	// timeout, or a status outside 200-202.
	Err error
}

// OK reports whether the hook answered 200, 201 or 202.
func (r Result) OK() bool { return r.Err == nil }

// Caller posts payloads to webhooks.
type Caller struct {
	client   *http.Client
	insecure *http.Client
	// backoff is the wait before the first retry; it doubles up to 5s.
	backoff time.Duration
}

// MaxAnswer is how much of a hook's answer is read. An answer is a
// status and, at most, a short message: a longer one fails the hook
// rather than fill the operator's memory.
const MaxAnswer = 1 << 20

// NewCaller returns a Caller whose requests verify TLS, except for hooks
// that set disableTLS, and never connect to the operator's own listeners
// that guard names (nil: no guard), directly or through a redirect.
func NewCaller(guard *egress.Guard) *Caller {
	base := guard.Transport(http.DefaultTransport.(*http.Transport).Clone())
	insecure := base.Clone()
	insecure.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for hooks that ask for it with disableTLS
	return &Caller{
		client:   &http.Client{Transport: egress.LimitAnswers(base, MaxAnswer)},
		insecure: &http.Client{Transport: egress.LimitAnswers(insecure, MaxAnswer)},
		backoff:  time.Second,
	}
}

// Call posts the payload, with each hook's metadata, to every hook at
// once and returns their answers in the hooks' order. It returns when all
// have answered or ctx is done.
func (c *Caller) Call(ctx context.Context, hooks []sluicev1beta1.CanaryWebhook, payload sluicev1beta1.CanaryWebhookPayload) []Result {
	results := make([]Result, len(hooks))
	var wg sync.WaitGroup
	for i, h := range hooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := payload
			p.Metadata = mergeMetadata(h.Metadata, payload.Metadata)
			results[i] = c.call(ctx, h, p)
		}()
	}
	wg.Wait()
	return results
}

func mergeMetadata(hook, extra map[string]string) map[string]string {
	if len(hook) == 0 && len(extra) == 0 {
		return nil
	}
	out := make(map[string]string, len(hook)+len(extra))
	for k, v := range hook {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// call makes one hook's attempts: the first and up to retries more, on
// transport errors, 429 and 5xx.
func (c *Caller) call(ctx context.Context, h sluicev1beta1.CanaryWebhook, p sluicev1beta1.CanaryWebhookPayload) Result {
	body, err := json.Marshal(p)
	if err != nil {
		return Result{Hook: h.Name, Err: fmt.Errorf("encode payload: %w", err)}
	}
	timeout := 10 * time.Second
	if h.Timeout != "" {
		if d, err := time.ParseDuration(h.Timeout); err == nil && d > 0 {
			timeout = d
		}
	}
	client := c.client
	if h.DisableTLS {
		client = c.insecure
	}
	res := Result{Hook: h.Name}
	backoff := c.backoff
	for attempt := 0; ; attempt++ {
		var retry bool
		res.StatusCode, retry, res.Err = post(ctx, client, h.URL, body, timeout)
		if res.Err == nil || !retry || attempt >= h.Retries {
			return res
		}
		select {
		case <-ctx.Done():
			return res
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// post sends one request and says whether a failure is worth a retry.
func post(ctx context.Context, client *http.Client, url string, body []byte, timeout time.Duration) (int, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, false, fmt.Errorf("build request to %s: %w", url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return 0, true, fmt.Errorf("POST %s: no answer within %s", url, timeout)
		case errors.Is(err, egress.ErrOwnEndpoint), errors.Is(err, egress.ErrAnswerTooLarge):
			// Asking again gets the same redirect or the same answer.
			return 0, false, fmt.Errorf("POST %s: %w", url, err)
		}
		return 0, true, fmt.Errorf("POST %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode >= http.StatusOK && resp.StatusCode <= http.StatusAccepted {
		// The answer is read whole, within the cap, so that one too long
		// fails the hook rather than pass unread. The status is the
		// answer: a connection that drops after it does not fail it.
		if _, err := io.Copy(io.Discard, resp.Body); errors.Is(err, egress.ErrAnswerTooLarge) {
			return resp.StatusCode, false, fmt.Errorf("POST %s: read the answer: %w", url, err)
		}
		return resp.StatusCode, false, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	err = fmt.Errorf("POST %s: %s", url, resp.Status)
	if text := strings.TrimSpace(string(msg)); text != "" {
		err = fmt.Errorf("%w: %s", err, text)
	}
	return resp.StatusCode, retry, err
}

// EventMetadata is the metadata Flagger adds to the payload of event hooks.
func EventMetadata(message string, warning bool, at time.Time) map[string]string {
	eventType := "Normal"
	if warning {
		eventType = "Warning"
	}
	return map[string]string{
		"eventMessage": message,
		"eventType":    eventType,
		"timestamp":    strconv.FormatInt(at.UnixMilli(), 10),
	}
}
