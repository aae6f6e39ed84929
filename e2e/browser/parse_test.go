package browser

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

var metricsCases = []struct {
	in   string
	want Metrics
	err  bool
}{
	{in: "# HELP x y\n# TYPE x counter\nx 3\n", want: Metrics{{Name: "x", Labels: map[string]string{}, Value: 3}}},
	{in: `verity_gateway_bytes_served_total{kind="html"} 1234` + "\n" + `verity_gateway_bytes_served_total{kind="asset",site="demo"} 1.5e+06`,
		want: Metrics{
			{Name: "verity_gateway_bytes_served_total", Labels: map[string]string{"kind": "html"}, Value: 1234},
			{Name: "verity_gateway_bytes_served_total", Labels: map[string]string{"kind": "asset", "site": "demo"}, Value: 1.5e6},
		}},
	{in: `m{a="x\"y\\z",b="",} +Inf 1700000000`, want: Metrics{{Name: "m", Labels: map[string]string{"a": `x"y\z`, "b": ""}, Value: math.Inf(1)}}},
	{in: `m{a="x"`, err: true},
	{in: `m{a=x} 1`, err: true},
	{in: `m abc`, err: true},
	{in: `m`, err: true},
}

func TestParseMetrics(t *testing.T) {
	for _, tc := range metricsCases {
		got, err := ParseMetrics(strings.NewReader(tc.in))
		if (err != nil) != tc.err {
			t.Errorf("ParseMetrics(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !tc.err && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseMetrics(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	m, _ := ParseMetrics(strings.NewReader(metricsCases[1].in))
	if got := m.Sum("verity_gateway_bytes_served_total", nil); got != 1234+1.5e6 {
		t.Errorf("Sum(all) = %v", got)
	}
	if got := m.Sum("verity_gateway_bytes_served_total", map[string]string{"kind": "asset"}); got != 1.5e6 {
		t.Errorf("Sum(asset) = %v", got)
	}
	if got := m.Sum("verity_gateway_bytes_served_total", map[string]string{"kind": "car_fallback"}); got != 0 {
		t.Errorf("Sum(car_fallback) = %v", got)
	}
}

func FuzzParseMetrics(f *testing.F) {
	for _, tc := range metricsCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseMetrics(strings.NewReader(in))
		if err == nil {
			for _, s := range m {
				if s.Name == "" || s.Labels == nil {
					t.Fatalf("bad sample %+v", s)
				}
			}
		}
	})
}

var timingCases = []struct {
	in   string
	want []ServerTiming
}{
	{`verity;desc="webtransport",node;desc="n1abc",blocks;desc="7",ttfb;dur=12.5`, []ServerTiming{
		{Name: "verity", Description: "webtransport"}, {Name: "node", Description: "n1abc"},
		{Name: "blocks", Description: "7"}, {Name: "ttfb", Duration: 12.5}}},
	{`a;desc=plain;dur=3, b`, []ServerTiming{{Name: "a", Description: "plain", Duration: 3}, {Name: "b"}}},
	{`x;desc="with, comma; and \"quote\""`, []ServerTiming{{Name: "x", Description: `with, comma; and "quote"`}}},
	{``, nil},
	{`,,`, nil},
}

func TestParseServerTiming(t *testing.T) {
	for _, tc := range timingCases {
		if got := ParseServerTiming(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseServerTiming(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseServerTiming(f *testing.F) {
	for _, tc := range timingCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, st := range ParseServerTiming(in) {
			if st.Name == "" {
				t.Fatalf("empty name from %q", in)
			}
		}
	})
}

// TestSplitFlag: a switch given with its dashes reaches Chromium once
// prefixed, not as "----name" (which Chromium ignores).
func TestSplitFlag(t *testing.T) {
	for _, tc := range []struct {
		in    string
		name  string
		value any
	}{
		{"headless", "headless", true},
		{"--headless", "headless", true},
		{"host-resolver-rules=MAP a.test 127.0.0.1", "host-resolver-rules", "MAP a.test 127.0.0.1"},
		{"--js-flags=--liftoff-only --single-threaded-gc", "js-flags", "--liftoff-only --single-threaded-gc"},
		{"-x=a=b", "x", "a=b"},
		{"empty=", "empty", ""},
	} {
		name, value := splitFlag(tc.in)
		if name != tc.name || value != tc.value {
			t.Errorf("splitFlag(%q) = %q, %#v; want %q, %#v", tc.in, name, value, tc.name, tc.value)
		}
	}
}
