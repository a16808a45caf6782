package dashboard

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Chart geometry, in the SVG's own units: the stylesheet scales the SVG
// to the page's width.
const (
	chartWidth  = 480
	chartHeight = 140
	padLeft     = 44
	padRight    = 10
	padTop      = 8
	padBottom   = 20
	plotWidth   = chartWidth - padLeft - padRight
	plotHeight  = chartHeight - padTop - padBottom
)

// chart is an SVG line chart rendered on the server: a polyline through
// points, with the value and time of each point in data attributes, so
// that a test (or a curious person) reads the values from the page.
type chart struct {
	Width, Height int
	// Plot is the frame of the plot area.
	PlotX, PlotY, PlotW, PlotH float64
	// LabelX is where the value labels end, RightX where the plot does,
	// and TimeY is the baseline of the time labels.
	LabelX, RightX, TimeY float64
	// Line holds the polyline's points, "x,y x,y".
	Line   string
	Points []chartPoint
	// Band is the threshold band, nil without one.
	Band   *chartBand
	YTicks []chartTick
	// From and To label the time axis.
	From, To string
	// Empty says why there is nothing to draw; the chart is drawn when
	// it is "".
	Empty string
}

// chartPoint is one value.
type chartPoint struct {
	X, Y float64
	// Value is the value as the status holds it.
	Value string
	// Time is the step's time, RFC 3339.
	Time string
	// Step is the index of the step in status.steps.
	Step int
	// Outcome is the check's or the step's outcome.
	Outcome string
}

// chartBand is the range of values that pass.
type chartBand struct {
	Y, H  float64
	Label string
}

type chartTick struct {
	Y     float64
	Label string
}

// sample is one value at one time, for a chart.
type sample struct {
	Time    time.Time
	Value   float64
	Raw     string
	Step    int
	Outcome string
}

// timeAxis maps times between from and to onto the plot's width.
type timeAxis struct{ from, to time.Time }

func newTimeAxis(times []time.Time) timeAxis {
	if len(times) == 0 {
		return timeAxis{}
	}
	a := timeAxis{from: times[0], to: times[0]}
	for _, t := range times[1:] {
		if t.Before(a.from) {
			a.from = t
		}
		if t.After(a.to) {
			a.to = t
		}
	}
	return a
}

func (a timeAxis) x(t time.Time) float64 {
	span := a.to.Sub(a.from)
	if span <= 0 {
		// One point in time: the middle.
		return padLeft + plotWidth/2
	}
	return padLeft + float64(t.Sub(a.from))/float64(span)*plotWidth
}

// valueAxis maps values between lo and hi onto the plot's height, with
// a label every step.
type valueAxis struct{ lo, hi, step float64 }

func (a valueAxis) y(v float64) float64 {
	return padTop + plotHeight - (v-a.lo)/(a.hi-a.lo)*plotHeight
}

// ticks label the axis at every step from lo to hi.
func (a valueAxis) ticks() []chartTick {
	var ticks []chartTick
	for v := a.lo; v <= a.hi+a.step/2; v += a.step {
		ticks = append(ticks, chartTick{Y: round(a.y(v)), Label: formatValue(v)})
	}
	return ticks
}

// niceAxis widens lo to hi to whole steps of 1, 2 or 5 times a power of
// ten, about four of them, so that the labels read as round numbers.
func niceAxis(lo, hi float64) valueAxis {
	if hi <= lo {
		pad := math.Max(math.Abs(hi)*0.1, 1)
		lo, hi = lo-pad, hi+pad
	}
	raw := (hi - lo) / 4
	magnitude := math.Pow(10, math.Floor(math.Log10(raw)))
	step := magnitude * 10
	for _, m := range []float64{1, 2, 5} {
		if raw <= m*magnitude {
			step = m * magnitude
			break
		}
	}
	return valueAxis{lo: math.Floor(lo/step) * step, hi: math.Ceil(hi/step) * step, step: step}
}

func newChart(axis timeAxis) chart {
	c := chart{
		Width: chartWidth, Height: chartHeight, PlotX: padLeft, PlotY: padTop, PlotW: plotWidth, PlotH: plotHeight,
		LabelX: padLeft - 4, RightX: padLeft + plotWidth, TimeY: chartHeight - 5,
	}
	if !axis.from.IsZero() {
		c.From, c.To = axis.from.UTC().Format(time.TimeOnly), axis.to.UTC().Format(time.TimeOnly)
	}
	return c
}

// weightChart draws the traffic weight after each step, as steps: the
// weight holds until the next step moves it.
func weightChart(samples []sample, axis timeAxis) chart {
	c := newChart(axis)
	if len(samples) == 0 {
		c.Empty = "No steps yet."
		return c
	}
	va := valueAxis{lo: 0, hi: 100, step: 25}
	c.YTicks = va.ticks()
	var line []string
	for i, s := range samples {
		x, y := axis.x(s.Time), va.y(s.Value)
		if i > 0 {
			line = append(line, point(x, va.y(samples[i-1].Value)))
		}
		line = append(line, point(x, y))
		c.Points = append(c.Points, chartPoint{X: round(x), Y: round(y), Value: s.Raw, Time: s.Time.UTC().Format(time.RFC3339), Step: s.Step, Outcome: s.Outcome})
	}
	c.Line = strings.Join(line, " ")
	return c
}

// metricChart draws a metric's values with the band between min and max
// (either may be nil) that passes.
func metricChart(samples []sample, axis timeAxis, min, max *float64) chart {
	c := newChart(axis)
	if len(samples) == 0 {
		c.Empty = "No values yet."
		return c
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	widen := func(v float64) {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	for _, s := range samples {
		widen(s.Value)
	}
	if min != nil {
		widen(*min)
	}
	if max != nil {
		widen(*max)
	}
	va := niceAxis(lo, hi)
	// A value that cannot go below zero, such as a rate or a latency,
	// keeps its axis at zero rather than in the negatives.
	if lo >= 0 && va.lo < 0 {
		va.lo = 0
	}
	c.YTicks = va.ticks()
	if min != nil || max != nil {
		top, bottom := va.hi, va.lo
		if max != nil {
			top = *max
		}
		if min != nil {
			bottom = *min
		}
		c.Band = &chartBand{Y: round(va.y(top)), H: round(va.y(bottom) - va.y(top)), Label: thresholdText(min, max)}
	}
	line := make([]string, 0, len(samples))
	for _, s := range samples {
		x, y := axis.x(s.Time), va.y(s.Value)
		line = append(line, point(x, y))
		c.Points = append(c.Points, chartPoint{X: round(x), Y: round(y), Value: s.Raw, Time: s.Time.UTC().Format(time.RFC3339), Step: s.Step, Outcome: s.Outcome})
	}
	c.Line = strings.Join(line, " ")
	return c
}

// thresholdText says which values pass: "≥ 99", "≤ 500", "99 – 500".
func thresholdText(min, max *float64) string {
	switch {
	case min != nil && max != nil:
		return formatValue(*min) + " – " + formatValue(*max)
	case min != nil:
		return "≥ " + formatValue(*min)
	case max != nil:
		return "≤ " + formatValue(*max)
	}
	return ""
}

func point(x, y float64) string {
	return fmt.Sprintf("%g,%g", round(x), round(y))
}

// round keeps one decimal: the SVG does not need more, and the page is
// smaller.
func round(v float64) float64 {
	return math.Round(v*10) / 10
}

func formatValue(v float64) string {
	return strconv.FormatFloat(v, 'g', 5, 64)
}
