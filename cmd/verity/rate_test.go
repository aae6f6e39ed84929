package main

import "testing"

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1000", 1000}, {"500k", 500_000}, {"20MB", 20_000_000}, {"100MiB", 100 << 20},
		{"1GiB/s", 1 << 30}, {"2G", 2_000_000_000}, {"64KiB", 64 << 10}, {"12B", 12},
	} {
		if got, err := parseRate(tc.in); err != nil || got != tc.want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "-5M", "1.5M", "MB", "10 MB", "9999999999999GiB", "5X"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"500GB": 500e9, "2TiB": 2 << 40, "1073741824": 1 << 30, "10G": 10e9} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1GB", "10GB/s", "lots"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
