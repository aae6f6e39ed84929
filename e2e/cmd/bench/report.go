package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"
)

// Metric is one line of the results.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Note  string  `json:"note,omitempty"`
}

// Results is what one run of the bench measured.
type Results struct {
	Time    time.Time `json:"time"`
	Machine string    `json:"machine"`
	Metrics []Metric  `json:"metrics"`
	// Targets are the speed targets this run measured, with their
	// verdicts (targets.go).
	Targets []TargetCheck `json:"targets,omitempty"`
}

func (r *Results) add(name string, value float64, unit, note string) {
	r.Metrics = append(r.Metrics, Metric{Name: name, Value: value, Unit: unit, Note: note})
}

func (r *Results) value(name string) (float64, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

// ratio adds a/b as a metric when both were measured.
func (r *Results) ratio(name, a, b, note string) {
	va, okA := r.value(a)
	vb, okB := r.value(b)
	if okA && okB && vb > 0 {
		r.add(name, va/vb, "x", note)
	}
}

// writeTable prints the results as an aligned table.
func (r *Results) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "metric\tvalue\tunit\tnote\n")
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, format(m.Value), m.Unit, m.Note)
	}
	return tw.Flush()
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func (r *Results) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// median of xs (xs is sorted in place).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sort.Float64s(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}
