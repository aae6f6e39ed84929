package gateway

import (
	"errors"
	"strings"
	"testing"
)

func TestSiteNames(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
	}{
		{"blog", ""},
		{"a", ""},
		{"my-site-2", ""},
		{strings.Repeat("a", 63), ""},
		{"", "empty"},
		{strings.Repeat("a", 64), "longer than 63"},
		{"-blog", "hyphen"},
		{"blog-", "hyphen"},
		{"Blog", `'B'`},
		{"my_site", `'_'`},
		{"my.site", `'.'`},
		{"bl og", `' '`},
		{"café", `'é'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateSiteName(tc.name)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ne *SiteNameError
			if !errors.Is(err, ErrInvalidSiteName) || !errors.As(err, &ne) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want one naming %s", err, tc.reason)
			}
			if statusOf(err) != 400 || !strings.Contains(errorMessage(err), tc.reason) {
				t.Fatalf("status %d message %q", statusOf(err), errorMessage(err))
			}
		})
	}
}
