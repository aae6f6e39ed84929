package archtest

import (
	"slices"
	"strings"
	"testing"
)

// mod names a package of the module.
func mod(p string) string { return modulePath + "/" + p }

// example turns a pattern into a package it matches.
func example(pat string) string { return expand(strings.ReplaceAll(pat, "/...", "/x")) }

// Every rule fails on a graph that breaks it, with the chain that does.
func TestCheckImportsEveryRuleCanFail(t *testing.T) {
	for i, r := range importRules {
		for _, from := range r.From {
			for _, bad := range r.Forbid {
				root := example(from)
				if from == "..." {
					root = mod("somepart")
				}
				mid, dep := "example.com/mid", example(bad)
				g := importGraph{root: {"strings", mid}, mid: {dep}, dep: nil, "strings": nil}
				name := trimModule(root) + "→" + trimModule(dep)
				t.Run(name, func(t *testing.T) {
					if !r.constrains(root) {
						t.Fatalf("rule %d does not constrain %s", i, root)
					}
					var got []importViolation
					for _, v := range checkImports(g, importRules) {
						if v.Rule == i {
							got = append(got, v)
						}
					}
					want := []string{root, mid, dep}
					if len(got) != 1 || got[0].Pattern != bad || !slices.Equal(got[0].Chain, want) {
						t.Fatalf("rule %d (%s) on %v: %v, want one violation of %s via %v", i, r.Why, g, got, bad, want)
					}
					if s := got[0].String(); !strings.Contains(s, trimModule(root)+" → example.com/mid → "+trimModule(dep)) {
						t.Errorf("message %q does not show the chain", s)
					}
				})
			}
		}
	}
}

func TestCheckImports(t *testing.T) {
	rules := []importRule{
		{From: []string{"internal/..."}, Forbid: []string{"gateway/..."}},
		{From: []string{"..."}, Except: []string{"cmd/verity", "devnet/..."}, Forbid: []string{"devnet/..."}},
	}
	cases := []struct {
		name string
		g    importGraph
		want []string // violations, as String
	}{
		{
			name: "clean",
			g: importGraph{
				mod("internal/verify"): {mod("internal/cid")},
				mod("internal/cid"):    {"errors"},
				mod("gateway"):         {mod("internal/verify")},
				mod("cmd/verity"):      {mod("devnet"), mod("gateway")},
				mod("devnet"):          {mod("gateway"), mod("devnet/sub")},
				mod("devnet/sub"):      nil,
			},
		},
		{
			// Only the package that breaks the rule is reported, not
			// every package of the rule that imports it.
			name: "offender only",
			g: importGraph{
				mod("internal/verify"): {mod("internal/cid")},
				mod("internal/car"):    {mod("internal/cid")},
				mod("internal/cid"):    {mod("gateway/sub")},
				mod("gateway/sub"):     nil,
			},
			want: []string{"internal/cid imports gateway/sub (forbidden: gateway/...): internal/cid → gateway/sub"},
		},
		{
			// ... unless it has a way of its own.
			name: "second way",
			g: importGraph{
				mod("internal/verify"): {mod("internal/cid"), "example.com/lib"},
				mod("internal/cid"):    {mod("gateway")},
				"example.com/lib":      {mod("gateway")},
				mod("gateway"):         nil,
			},
			want: []string{
				"internal/cid imports gateway (forbidden: gateway/...): internal/cid → gateway",
				"internal/verify imports gateway (forbidden: gateway/...): internal/verify → example.com/lib → gateway",
			},
		},
		{
			name: "shortest chain",
			g: importGraph{
				mod("internal/x"):  {"example.com/a", "example.com/b"},
				"example.com/a":    {"example.com/a2"},
				"example.com/a2":   {mod("gateway")},
				"example.com/b":    {mod("gateway")},
				mod("gateway"):     nil,
				"example.com/free": {mod("gateway")}, // not the module's: no rule
			},
			want: []string{"internal/x imports gateway (forbidden: gateway/...): internal/x → example.com/b → gateway"},
		},
		{
			name: "except",
			g: importGraph{
				mod("cmd/verity"):       {mod("devnet")},
				mod("e2e"):              {mod("devnet")},
				mod("control"):          {mod("devnet")},
				mod("devnetwork"):       nil, // not under devnet/
				mod("gateway"):          {mod("devnetwork")},
				mod("devnet"):           nil,
				mod("internal/devtest"): {mod("devnet")},
			},
			want: []string{
				"control imports devnet (forbidden: devnet/...): control → devnet",
				"e2e imports devnet (forbidden: devnet/...): e2e → devnet",
				"internal/devtest imports devnet (forbidden: devnet/...): internal/devtest → devnet",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, v := range checkImports(tc.g, rules) {
				got = append(got, v.String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(tc.want, "\n\t"))
			}
		})
	}
}

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		pat, p string
		want   bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b", "a/bc", false},
		{"a/b/...", "a/b", true},
		{"a/b/...", "a/b/c/d", true},
		{"a/b/...", "a/bc", false},
		{"a/b...", "a/bc", true},
		{"a/b...", "a/b/c", true},
		{"a/.../c", "a/x/y/c", true},
		{"a/.../c", "a/x/y/d", false},
		{"crypto/internal/fips140...", "crypto/internal/fips140deps/byteorder", true},
		{"crypto/internal/fips140...", "crypto/internal/entropy", false},
		{"...", "anything/at/all", true},
	}
	for _, tc := range cases {
		if got := matchPattern(tc.pat, tc.p); got != tc.want {
			t.Errorf("matchPattern(%q, %q) = %v, want %v", tc.pat, tc.p, got, tc.want)
		}
	}
}

func TestParseGoList(t *testing.T) {
	out := []byte(`{"ImportPath": "errors"}
{"ImportPath": "github.com/verity-cdn/verity/internal/cid", "Imports": ["errors", "strings"]}
`)
	g, err := parseGoList(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 2 || !slices.Equal(g[mod("internal/cid")], []string{"errors", "strings"}) {
		t.Errorf("parseGoList = %v", g)
	}
	if _, err := parseGoList([]byte(`{"ImportPath": `)); err == nil {
		t.Error("parseGoList accepted a truncated object")
	}
}
