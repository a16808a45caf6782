package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"sluice.dev/sluice/test/output"
)

// testWriter passes the demo's output to the test log, so that `go test
// -v` shows the rollouts as they go.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestTheDemoPromotesTheHealthyReleaseAndRollsBackTheFaultyOne(t *testing.T) {
	// As in main: the operator logs to its file in the work folder.
	ctrllog.SetLogger(logr.Discard())
	var out output.Buffer
	// The dashboard shows both releases once they are over: the timeline
	// of the Canary's page has the promotion and the rollback.
	// Held, as at a terminal, it keeps the dashboard up after the
	// releases until Ctrl-C, here the test's cancel once the held
	// dashboard has answered.
	var page string
	var held atomic.Bool
	var holding sync.WaitGroup
	defer holding.Wait()
	ctx, interrupt := context.WithCancel(t.Context())
	defer interrupt()
	opts := Options{DashboardAddress: "127.0.0.1:0", Hold: true, AfterReleases: func(ctx context.Context, url string) error {
		holding.Go(func() {
			defer interrupt()
			err := waitForHold(ctx, &out, url)
			switch {
			case err == nil:
				held.Store(true)
			case ctx.Err() == nil:
				t.Errorf("the held demo: %v", err)
			}
		})
		var err error
		page, err = readPage(ctx, url+"canaries/"+namespace+"/"+appName)
		return err
	}}
	if err := Run(ctx, io.MultiWriter(&out, testWriter{t}), opts); err != nil {
		t.Fatalf("demo: %v", err)
	}
	if !held.Load() {
		t.Error("the demo did not hold the dashboard up after the releases")
	}
	lines := strings.Split(out.String(), "\n")
	if !strings.HasPrefix(lines[0], "Sluice dashboard: http://127.0.0.1:") {
		t.Errorf("the demo's first line is %q, want the dashboard's URL", lines[0])
	}
	for _, want := range []string{"<b>RolledBack</b>", "<b>Promoted</b>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the dashboard's page of the Canary has no %s release:\n%s", want, page)
		}
	}
	line := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Errorf("the demo's output has no line that starts with %q", prefix)
		return ""
	}
	line("  ok     v2 (healthy) was promoted in ")
	// The reason names the metric that failed and its threshold.
	if v3 := line("  ok     v3 (5% errors) was rolled back in "); !strings.Contains(v3, "success-rate") || !strings.Contains(v3, "< 99") {
		t.Errorf("the summary of v3 does not say which metric failed: %q", v3)
	}
	line("PASS: Sluice promoted the healthy release and rolled back the faulty one.")
	line("The dashboard stays up at http://127.0.0.1:")
}

// waitForHold waits until the demo says it holds, then reads the
// dashboard's overview, which must still answer.
func waitForHold(ctx context.Context, out *output.Buffer, url string) error {
	for !strings.Contains(out.String(), "Ctrl-C stops the demo.") {
		select {
		case <-ctx.Done():
			return fmt.Errorf("it never said it holds: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	_, err := readPage(ctx, url)
	return err
}

// readPage reads a page of the dashboard, which must answer 200.
func readPage(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("read the dashboard: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the dashboard answered %s: %s", resp.Status, body)
	}
	return string(body), err
}

func TestTheDemoHoldsOnlyWhenItsInputIsATerminal(t *testing.T) {
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	pipe, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	defer w.Close()
	tty := openTerminal(t)
	for _, tc := range []struct {
		name string
		in   *os.File
		want bool
	}{
		{"a terminal", tty, true},
		{"/dev/null, a character device but no terminal", devNull, false},
		{"a pipe", pipe, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := interactive(tc.in); got != tc.want {
				t.Errorf("interactive(%s) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}

// openTerminal opens a new pseudo-terminal and returns its terminal end.
func openTerminal(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open a pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("number the pseudo-terminal: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the pseudo-terminal's terminal end: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty
}
