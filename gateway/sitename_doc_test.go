package gateway

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The docs state the site name rule as ValidateSiteName checks it:
// wherever README.md or docs/ say what a site name is, they say
// SiteNameRule, and the example names docs/deploying-a-site.md lists
// as accepted or refused are.
func TestDocsStateTheSiteNameRule(t *testing.T) {
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../README.md")
	statement := regexp.MustCompile(`(?i)\bsite names? (?:is|are) ([^.;()|]+)`)
	stated := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(b)), " ")
		for _, m := range statement.FindAllStringSubmatch(text, -1) {
			if !strings.HasPrefix(m[1], SiteNameRule) {
				t.Errorf("%s says %q, want %q", f, m[0], "a site name is "+SiteNameRule)
				continue
			}
			stated++
		}
	}
	if stated < 3 {
		t.Errorf("the rule is stated %d times in README.md and docs/, want at least 3 (README, deploying-a-site, events)", stated)
	}

	b, err := os.ReadFile("../docs/deploying-a-site.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "<!-- site name examples")
	table, _, ok2 := strings.Cut(table, "<!-- end of site name examples -->")
	if !ok || !ok2 {
		t.Fatal("docs/deploying-a-site.md has no site name examples")
	}
	code := regexp.MustCompile("`([^`]*)`")
	checked := 0
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(line, "`") {
			continue
		}
		accepted := strings.TrimSpace(cells[2]) == "accepted"
		var names []string
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			names = append(names, m[1])
		}
		if strings.Contains(cells[1], "64 characters") {
			names = append(names, strings.Repeat("a", 64))
		}
		for _, name := range names {
			if got := ValidateSiteName(name) == nil; got != accepted {
				t.Errorf("the docs say %q is accepted: %v; ValidateSiteName: %v", name, accepted, ValidateSiteName(name))
			}
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("%d example names checked, want the table's 12", checked)
	}
}
