package main

import (
	"context"
	"io"
	"maps"
	"net/http"
	"sync"
	"time"
)

// load sends a steady stream of requests through the proxy, as users
// would, and counts the answers by the version that gave them.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	count tally
}

// tally counts answers.
type tally struct {
	// byVersion counts the answers by the version that gave them, errors
	// included.
	byVersion map[string]int
	// errors are answers of 5xx; failed are requests with no answer.
	errors, failed int
}

func (t tally) total() int {
	n := t.failed
	for _, c := range t.byVersion {
		n += c
	}
	return n
}

// minus is what was counted since earlier.
func (t tally) minus(earlier tally) tally {
	d := tally{byVersion: map[string]int{}, errors: t.errors - earlier.errors, failed: t.failed - earlier.failed}
	for v, c := range t.byVersion {
		if n := c - earlier.byVersion[v]; n > 0 {
			d.byVersion[v] = n
		}
	}
	return d
}

// startLoad sends perSecond requests a second to proxy for host until
// stopped.
func startLoad(proxy, host string, perSecond int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, count: tally{byVersion: map[string]int{}}}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	jobs := make(chan struct{}, perSecond)
	// Enough workers that a slow answer does not slow the stream.
	for range 16 {
		l.wg.Go(func() {
			for range jobs {
				l.send(ctx, c, proxy, host)
			}
		})
	}
	l.wg.Go(func() {
		defer close(jobs)
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case jobs <- struct{}{}:
			default: // every worker is busy: drop rather than burst later
			}
		}
	})
	return l
}

func (l *load) send(ctx context.Context, c *http.Client, proxy, host string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+proxy+"/", nil)
	if err != nil {
		return
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.record("", 0)
		}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	l.record(resp.Header.Get("X-Version"), resp.StatusCode)
}

func (l *load) record(version string, code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case code == 0:
		l.count.failed++
		return
	case code >= 500:
		l.count.errors++
	}
	if version == "" {
		// Traefik's own answer, such as a 502 when the backend is gone.
		version = "traefik"
	}
	l.count.byVersion[version]++
}

// tally is what was counted so far.
func (l *load) tally() tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.count
	t.byVersion = maps.Clone(l.count.byVersion)
	return t
}

// stop ends the load and waits for the requests under way.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}
