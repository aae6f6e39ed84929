package main

import (
	"errors"
	"strconv"
	"strings"
)

// parseRate parses a byte rate per second: a positive integer with an
// optional suffix k, M, G (powers of 1000) or KiB, MiB, GiB (powers of
// 1024), and an optional trailing "B" or "/s": 20MB, 100MiB/s, 500k.
func parseRate(s string) (int64, error) {
	v := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, errors.New("want a positive rate such as 20MB, 100MiB or 500k (bytes per second)")
	}
	return n * mult, nil
}

// parseSize parses a byte size as parseRate does (no "/s"): 500GB, 2TiB.
func parseSize(s string) (int64, error) {
	if strings.HasSuffix(strings.TrimSpace(s), "/s") {
		return 0, errors.New("want a size such as 500GB or 2TiB, not a rate")
	}
	n, err := parseRate(s)
	if err != nil {
		return 0, errors.New("want a positive size such as 500GB, 2TiB or 1073741824 (bytes)")
	}
	return n, nil
}
