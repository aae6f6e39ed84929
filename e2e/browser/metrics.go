package browser

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sample is one sample of a Prometheus text exposition.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is a scraped Prometheus text exposition.
type Metrics []Sample

// Sum adds the values of the samples named name whose labels include every
// label of match (nil matches all).
func (m Metrics) Sum(name string, match map[string]string) float64 {
	var sum float64
	for _, s := range m {
		if s.Name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.Labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			sum += s.Value
		}
	}
	return sum
}

// Has reports whether a sample named name exists.
func (m Metrics) Has(name string) bool {
	for _, s := range m {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Select returns the samples named name.
func (m Metrics) Select(name string) []Sample {
	var out []Sample
	for _, s := range m {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Scrape GETs url (a /metrics endpoint) and parses it, bounded by 10s.
func Scrape(ctx context.Context, url string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("browser: scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("browser: scrape %s: status %s", url, resp.Status)
	}
	m, err := ParseMetrics(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("browser: scrape %s: %w", url, err)
	}
	return m, nil
}

// ParseMetrics parses the Prometheus text format (version 0.0.4).
func ParseMetrics(r io.Reader) (Metrics, error) {
	var out Metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		sm, err := parseSample(s)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, sm)
	}
	return out, sc.Err()
}

func parseSample(s string) (Sample, error) {
	sm := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(s, "{ \t")
	if i <= 0 {
		return sm, fmt.Errorf("no value in %q", s)
	}
	sm.Name = s[:i]
	rest := s[i:]
	if rest[0] == '{' {
		j := 1
		for {
			for j < len(rest) && (rest[j] == ' ' || rest[j] == ',') {
				j++
			}
			if j >= len(rest) {
				return sm, fmt.Errorf("unterminated labels in %q", s)
			}
			if rest[j] == '}' {
				j++
				break
			}
			eq := strings.IndexByte(rest[j:], '=')
			if eq < 0 || j+eq+1 >= len(rest) || rest[j+eq+1] != '"' {
				return sm, fmt.Errorf("bad label in %q", s)
			}
			key := strings.TrimSpace(rest[j : j+eq])
			j += eq + 2
			var val strings.Builder
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[j])
					}
					continue
				}
				val.WriteByte(rest[j])
			}
			if j >= len(rest) {
				return sm, fmt.Errorf("unterminated label value in %q", s)
			}
			j++
			sm.Labels[key] = val.String()
		}
		rest = rest[j:]
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return sm, fmt.Errorf("no value in %q", s)
	}
	switch f[0] {
	case "+Inf":
		sm.Value = math.Inf(1)
	case "-Inf":
		sm.Value = math.Inf(-1)
	case "NaN":
		sm.Value = math.NaN()
	default:
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return sm, fmt.Errorf("bad value in %q: %w", s, err)
		}
		sm.Value = v
	}
	return sm, nil
}
