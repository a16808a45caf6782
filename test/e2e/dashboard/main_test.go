// Package dashboard tests `sluicectl dashboard` in a real browser: a
// headless Chromium, driven with chromedp, loads the pages a dashboard
// serves from the real test control plane, while the real operator runs
// releases analysed from a real Prometheus.
package dashboard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"

	"sluice.dev/sluice/test/controlplane"
)

var (
	cp *controlplane.ControlPlane
	// browser is the Chromium the tests open their tabs in.
	browser context.Context
)

func TestMain(m *testing.M) {
	os.Exit(runPackage(m))
}

func runPackage(m *testing.M) int {
	// The Canaries route with the Gateway API: the operator writes their
	// HTTPRoutes' weights, which is all a release needs to move.
	gateway, err := controlplane.GatewayAPICRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	opts := controlplane.Options{CRDDirectoryPaths: append([]string{controlplane.SluiceCRDs()}, gateway...)}
	return controlplane.RunTests(m, opts, &cp, startBrowser)
}

// startBrowser starts one headless Chromium for the package, with a
// profile of its own that is removed afterwards.
func startBrowser(*controlplane.ControlPlane) (func(), error) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		return nil, fmt.Errorf("chromium is not installed: `make test-packages` installs Debian's chromium: %w", err)
	}
	profile, err := os.MkdirTemp("", "sluice-chromium-")
	if err != nil {
		return nil, fmt.Errorf("create the browser profile: %w", err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		// Chromium's own temporary files go with the profile.
		chromedp.Env("TMPDIR="+profile),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Tabs that are not in front still run their scripts at full
		// speed: several tests watch their pages at once.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	stop := func() {
		cancel()
		cancelAlloc()
		_ = os.RemoveAll(profile)
	}
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, fmt.Errorf("start chromium: %w", err)
	}
	browser = ctx
	return stop, nil
}
