package scale

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// result is what one size measured.
type result struct {
	canaries int
	// args were added to the operator's flags.
	args []string
	// create is how long the benchmark took to create the namespaces,
	// Deployments and Canaries; targetsReady, from the same start, until
	// the target Deployments were Available.
	create, targetsReady time.Duration
	// initialised is from the operator's start until every Canary was
	// Initialized and Ready; initCPU is the operator's CPU time and
	// initRequests its requests until then.
	initialised  time.Duration
	initCPU      time.Duration
	initRequests float64
	// initCPUShares is the CPU time of each command on the machine
	// during the initialisation: on 2 cores, the control plane's and the
	// operator's share them.
	initCPUShares []share
	// idle is the length of the idle window and of the baseline.
	idle time.Duration
	// idleRSS is the highest VmRSS sampled in the idle window.
	idleRSS                    int64
	idleCPUPerMin              float64
	idleRequestsPerMin         float64
	idleOperatorRequestsPerMin float64
	idleBreakdown              []rate
	// idleOperatorByMethod is the operator's own count of its requests,
	// a minute, by HTTP method.
	idleOperatorByMethod map[string]float64
	// detection holds the sorted latencies of the changes.
	detection []time.Duration
	// batch is the time for batch Canaries to release at once.
	batch time.Duration
	// peakRSS is VmHWM at the end; totalCPU the operator's CPU time then.
	peakRSS  int64
	totalCPU time.Duration
}

// percentile is the nearest-rank p-th percentile of sorted durations: of
// 20, the 99th is the largest.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// formatTable renders results as a Markdown table, one column for each
// size, with the targets of issue 19 at 10,000 Canaries, followed by the
// idle requests by verb and resource.
func formatTable(results []*result, idle time.Duration) string {
	var b strings.Builder
	header := "| figure |"
	rule := "|---|"
	for _, r := range results {
		header += fmt.Sprintf(" %s Canaries |", thousands(r.canaries))
		rule += "---|"
	}
	fmt.Fprintf(&b, "%s target at 10,000 |\n%s---|\n", header, rule)
	row := func(name, target string, cell func(r *result) string) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, r := range results {
			fmt.Fprintf(&b, " %s |", cell(r))
		}
		fmt.Fprintf(&b, " %s |\n", target)
	}
	row("objects created by the benchmark (a Deployment and a Canary each, 100 to a namespace)", "", func(r *result) string { return round(r.create).String() })
	row("target Deployments Available, from the first create", "", func(r *result) string { return round(r.targetsReady).String() })
	row("all Canaries Initialized and Ready, from the operator's start", "< 5m", func(r *result) string { return round(r.initialised).String() })
	row("operator CPU time and API requests until then", "", func(r *result) string {
		return fmt.Sprintf("%s, %s requests", round(r.initCPU), thousands(int(r.initRequests)))
	})
	row("CPU time of the machine's processes during the initialisation, the largest first", "", func(r *result) string {
		var parts []string
		for _, s := range r.initCPUShares[:min(len(r.initCPUShares), 6)] {
			parts = append(parts, fmt.Sprintf("%s %s", s.name, s.cpu.Round(time.Second)))
		}
		return strings.Join(parts, ", ")
	})
	row(fmt.Sprintf("RSS while idle (highest VmRSS over %s)", idle), "< 600 MiB", func(r *result) string { return mib(r.idleRSS) })
	row("CPU while idle (utime+stime)", "", func(r *result) string { return fmt.Sprintf("%.2f s/min", r.idleCPUPerMin) })
	row("API requests while idle (apiserver_request_total, less a baseline window without the operator)", "0 /min", func(r *result) string {
		return fmt.Sprintf("%.1f /min", r.idleRequestsPerMin)
	})
	row("of which the operator's ServiceAccount (its APF flow schema's dispatched requests)", "", func(r *result) string {
		return fmt.Sprintf("%.1f /min (%.4f per Canary)", r.idleOperatorRequestsPerMin, r.idleOperatorRequestsPerMin/float64(r.canaries))
	})
	row("the operator's own count, by method (its rest_client_requests_total)", "", func(r *result) string {
		return byMethod(r.idleOperatorByMethod)
	})
	row("API requests while idle other than Leases and watches, all clients (by verb and resource, less the baseline)", "", func(r *result) string {
		return fmt.Sprintf("%.1f /min", perCanaryWork(r.idleBreakdown))
	})
	row(fmt.Sprintf("a pod-template edit until the Canary's status shows the new revision, %d edits over %s: median / p99", changes, changeSpread), "p99 < 1s", func(r *result) string {
		return fmt.Sprintf("%s / %s", ms(percentile(r.detection, 0.5)), ms(percentile(r.detection, 0.99)))
	})
	row(fmt.Sprintf("%d Canaries changed at once, until all Succeeded (%d checks of %s each)", batch, iterations, interval), "", func(r *result) string { return round(r.batch).String() })
	row("operator peak RSS (VmHWM) and CPU time over the whole run", "", func(r *result) string {
		return fmt.Sprintf("%s, %s", mib(r.peakRSS), round(r.totalCPU))
	})
	for _, r := range results {
		if len(r.args) > 0 {
			fmt.Fprintf(&b, "\nAt %s Canaries the operator ran with %s added to the install's flags.\n", thousands(r.canaries), strings.Join(r.args, " "))
		}
	}
	for _, r := range results {
		fmt.Fprintf(&b, "\nIdle API requests at %s Canaries, by verb and resource, a minute, less the baseline:\n", thousands(r.canaries))
		if len(r.idleBreakdown) == 0 {
			b.WriteString("- none\n")
		}
		var watches float64
		var watched int
		for _, x := range r.idleBreakdown {
			if strings.HasPrefix(x.what, "WATCH ") {
				watches += x.perMinute
				watched++
				continue
			}
			fmt.Fprintf(&b, "- %s: %.1f\n", x.what, x.perMinute)
		}
		if watched > 0 {
			fmt.Fprintf(&b, "- WATCH, %d resources (a watch counts when it ends; client-go ends each after 5 to 10 minutes): %.1f\n", watched, watches)
		}
	}
	return b.String()
}

// byMethod prints rates by method, in the order of the methods' names;
// none is "none".
func byMethod(rates map[string]float64) string {
	if len(rates) == 0 {
		return "none"
	}
	var parts []string
	for _, m := range slices.Sorted(maps.Keys(rates)) {
		parts = append(parts, fmt.Sprintf("%s %.1f /min", m, rates[m]))
	}
	return strings.Join(parts, ", ")
}

// perCanaryWork sums the rates that are neither Lease requests (leader
// election's renewals, kwok's node heartbeats) nor watches (restarted by
// client-go every 5 to 10 minutes, one for each informer): what is left
// is what Canaries could cost.
func perCanaryWork(rates []rate) float64 {
	var sum float64
	for _, r := range rates {
		verb, resource, _ := strings.Cut(r.what, " ")
		if verb == "WATCH" || resource == "leases" {
			continue
		}
		sum += r.perMinute
	}
	return sum
}

// round rounds a duration for the table: to the millisecond under a
// second, else to a tenth of a second.
func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// ms prints a latency in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000)
}

// mib prints a size in MiB.
func mib(bytes int64) string { return fmt.Sprintf("%.0f MiB", float64(bytes)/(1<<20)) }

// thousands prints n with commas.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
