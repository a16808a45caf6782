// Package metrics turns the queries of Canary metrics into numbers checked
// against ranges: Prometheus, Datadog and the other providers, one file or
// package each.
package metrics
