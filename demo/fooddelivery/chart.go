package fooddelivery

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Series is one rate line of the effect chart, plotted against the right axis.
type Series struct {
	Name   string
	Color  string // CSS colour; default by position
	Dashed bool
	Points []Sample // rate per second at each bucket start
}

// Band shades a span of the x axis, e.g. a meal.
type Band struct {
	Label    string
	From, To time.Time
}

// Chart is the seed's "effect" figure: the order service's instances over time (left axis, a step line) against
// the order / event rate (right axis), with the meals shaded.
type Chart struct {
	Title      string
	Start, End time.Time // x range; default the data's extent
	Instances  []Sample  // step function: each value holds until the next sample
	Rates      []Series
	Bands      []Band
	RateLabel  string // right axis label; default "orders / s"
	Width      int    // default 960
	Height     int    // default 440
}

// Chart geometry and colours.
const (
	marginLeft, marginRight, marginTop, marginBottom = 64, 72, 64, 56
	instanceColor                                    = "#1f5fbf"
)

var rateColors = []string{"#e8710a", "#188038", "#a142f4", "#d93025"}

// WriteSVG renders the chart as a standalone SVG document. It needs nothing but the standard library, and a chart
// with no data still renders (empty axes), so the demo always leaves a file behind.
func (c Chart) WriteSVG(w io.Writer) error {
	if c.Width <= 0 {
		c.Width = 960
	}
	if c.Height <= 0 {
		c.Height = 440
	}
	if c.RateLabel == "" {
		c.RateLabel = "orders / s"
	}
	c.Start, c.End = c.extent()
	total := c.End.Sub(c.Start).Seconds()
	plotW := float64(c.Width - marginLeft - marginRight)
	plotH := float64(c.Height - marginTop - marginBottom)
	x := func(t time.Time) float64 {
		return marginLeft + plotW*clamp01(t.Sub(c.Start).Seconds()/total)
	}

	maxInst := 1.0
	for _, s := range c.Instances {
		maxInst = math.Max(maxInst, s.Value)
	}
	instStep := niceStep(maxInst, 6)
	instTop := math.Max(instStep*math.Ceil(maxInst*1.15/instStep), instStep)
	yInst := func(v float64) float64 { return marginTop + plotH*(1-v/instTop) }

	maxRate := 1.0
	for _, s := range c.Rates {
		for _, p := range s.Points {
			maxRate = math.Max(maxRate, p.Value)
		}
	}
	rateStep := niceStep(maxRate, 6)
	rateTop := math.Max(rateStep*math.Ceil(maxRate*1.05/rateStep), rateStep)
	yRate := func(v float64) float64 { return marginTop + plotH*(1-v/rateTop) }

	bw := bufio.NewWriter(w)
	pf := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	pf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		c.Width, c.Height, c.Width, c.Height)
	pf(`<rect width="100%%" height="100%%" fill="#ffffff"/>` + "\n")
	if c.Title != "" {
		pf(`<text x="%d" y="24" font-size="16" font-weight="bold" fill="#202124">%s</text>`+"\n", marginLeft, esc(c.Title))
	}

	// Meal bands, under everything else.
	for _, b := range c.Bands {
		x0, x1 := x(b.From), x(b.To)
		if x1 <= x0 {
			continue
		}
		pf(`<rect x="%.1f" y="%d" width="%.1f" height="%.1f" fill="#fdf1dc"/>`+"\n", x0, marginTop, x1-x0, plotH)
		pf(`<text x="%.1f" y="%d" text-anchor="middle" fill="#9a6b16" font-size="12">%s</text>`+"\n",
			(x0+x1)/2, marginTop+16, esc(b.Label))
	}

	// Grid and axes: horizontal grid lines follow the instance axis (integers are what one reads off first).
	for v := 0.0; v <= instTop+1e-9; v += instStep {
		y := yInst(v)
		pf(`<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e8eaed"/>`+"\n", marginLeft, y, marginLeft+plotW, y)
		pf(`<text x="%d" y="%.1f" text-anchor="end" fill="%s">%s</text>`+"\n", marginLeft-8, y+4, instanceColor, fmtNum(v))
	}
	for v := 0.0; v <= rateTop+1e-9; v += rateStep {
		y := yRate(v)
		pf(`<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", marginLeft+plotW+8, y+4, rateColors[0], fmtNum(v))
	}
	xStep := niceStep(total, 10)
	for v := 0.0; v <= total+1e-9; v += xStep {
		xx := marginLeft + plotW*v/total
		pf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#5f6368"/>`+"\n", xx, marginTop+plotH, xx, marginTop+plotH+5)
		pf(`<text x="%.1f" y="%.1f" text-anchor="middle" fill="#5f6368">%s</text>`+"\n", xx, marginTop+plotH+19, fmtNum(v))
	}
	pf(`<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="#5f6368"/>`+"\n", marginLeft, marginTop, plotW, plotH)
	pf(`<text x="%.1f" y="%d" text-anchor="middle" fill="#5f6368">seconds since start</text>`+"\n",
		marginLeft+plotW/2, c.Height-14)
	pf(`<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle" fill="%s" font-weight="bold">instances</text>`+"\n",
		marginTop+plotH/2, instanceColor)
	pf(`<text transform="translate(%d %.1f) rotate(90)" text-anchor="middle" fill="%s" font-weight="bold">%s</text>`+"\n",
		c.Width-14, marginTop+plotH/2, rateColors[0], esc(c.RateLabel))

	// Rates: lines against the right axis, the first one with a light fill.
	for i, s := range c.Rates {
		if len(s.Points) == 0 {
			continue
		}
		color := s.Color
		if color == "" {
			color = rateColors[i%len(rateColors)]
		}
		var pts strings.Builder
		for _, p := range s.Points {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.At), yRate(p.Value))
		}
		if i == 0 {
			pf(`<polygon points="%.1f,%.1f %s%.1f,%.1f" fill="%s" fill-opacity="0.12" stroke="none"/>`+"\n",
				x(s.Points[0].At), yRate(0), pts.String(), x(s.Points[len(s.Points)-1].At), yRate(0), color)
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="5 3"`
		}
		pf(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"%s/>`+"\n", strings.TrimSpace(pts.String()), color, dash)
	}

	// Instances: a step line on top, so it reads clearly over the rates.
	if len(c.Instances) > 0 {
		var d strings.Builder
		for i, s := range c.Instances {
			xx, yy := x(s.At), yInst(s.Value)
			if i == 0 {
				fmt.Fprintf(&d, "M%.1f,%.1f", xx, yy)
			} else {
				fmt.Fprintf(&d, " H%.1f V%.1f", xx, yy)
			}
		}
		fmt.Fprintf(&d, " H%.1f", x(c.End))
		pf(`<path d="%s" fill="none" stroke="%s" stroke-width="2.5" stroke-linejoin="round"/>`+"\n", d.String(), instanceColor)
	}

	// Legend, top right above the plot.
	type entry struct {
		name, color string
		dashed      bool
		width       float64
	}
	entries := []entry{{"instances", instanceColor, false, 2.5}}
	for i, s := range c.Rates {
		color := s.Color
		if color == "" {
			color = rateColors[i%len(rateColors)]
		}
		entries = append(entries, entry{s.Name, color, s.Dashed, 1.5})
	}
	lx := float64(marginLeft)
	for _, e := range entries {
		dash := ""
		if e.dashed {
			dash = ` stroke-dasharray="5 3"`
		}
		pf(`<line x1="%.1f" y1="46" x2="%.1f" y2="46" stroke="%s" stroke-width="%.1f"%s/>`+"\n", lx, lx+22, e.color, e.width, dash)
		pf(`<text x="%.1f" y="50" fill="#202124">%s</text>`+"\n", lx+28, esc(e.name))
		lx += 28 + 7.2*float64(len(e.name)) + 24
	}
	pf("</svg>\n")
	return bw.Flush()
}

// extent is the chart's x range: Start/End when set, else the data's first and last moments.
func (c Chart) extent() (time.Time, time.Time) {
	start, end := c.Start, c.End
	see := func(t time.Time) {
		if c.Start.IsZero() && (start.IsZero() || t.Before(start)) {
			start = t
		}
		if c.End.IsZero() && (end.IsZero() || t.After(end)) {
			end = t
		}
	}
	for _, s := range c.Instances {
		see(s.At)
	}
	for _, r := range c.Rates {
		for _, p := range r.Points {
			see(p.At)
		}
	}
	if start.IsZero() {
		start = time.Unix(0, 0)
	}
	if !end.After(start) {
		end = start.Add(time.Second)
	}
	return start, end
}

// niceStep is a 1, 2 or 5 × 10^k step that splits span into at most maxTicks intervals.
func niceStep(span float64, maxTicks int) float64 {
	if span <= 0 {
		return 1
	}
	raw := span / float64(maxTicks)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return math.Max(m*mag, 1e-9)
		}
	}
	return 10 * mag
}

func fmtNum(v float64) string {
	if math.Abs(v-math.Round(v)) < 1e-9 {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func clamp01(v float64) float64 { return math.Min(math.Max(v, 0), 1) }

func esc(s string) string { return html.EscapeString(s) }

// EffectChart builds the demo's chart from what it collected: instances over time, orders sent per second and
// orders stored per second (1 s buckets), with the meals of the schedule shaded.
func EffectChart(title string, in SummaryInput, end time.Time) Chart {
	start := in.Start
	if start.IsZero() && len(in.Sent) > 0 {
		start = in.Sent[0].SentAt
	}
	sent := make([]time.Time, 0, len(in.Sent))
	for _, s := range in.Sent {
		sent = append(sent, s.SentAt)
	}
	stored := make([]time.Time, 0, len(in.Orders))
	for _, o := range in.Orders {
		stored = append(stored, o.Stored)
	}
	c := Chart{Title: title, Start: start, End: end, Instances: in.Instances, Rates: []Series{
		{Name: "orders sent / s", Points: RateSeries(sent, start, end, time.Second)},
		{Name: "orders stored / s", Dashed: true, Points: RateSeries(stored, start, end, time.Second)},
	}}
	if in.Schedule != nil {
		sched := *in.Schedule
		for _, m := range MealWindows(sched, start, in.played()) {
			mid := m.From.Add(m.To.Sub(m.From) / 2)
			label := m.Name + " " + sched.Day.Clock(sched.Fraction(mid.Sub(start)))
			c.Bands = append(c.Bands, Band{Label: label, From: m.From, To: m.To})
		}
	}
	return c
}
