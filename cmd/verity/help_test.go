package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Every command and subcommand answers -h and --help with its usage and
// exit status 0; a wrong command is still a usage error (2).
func TestHelpExitsZero(t *testing.T) {
	var cmds [][]string
	for name := range commands {
		cmds = append(cmds, []string{name})
	}
	cmds = append(cmds,
		[]string{"sites", "create"}, []string{"sites", "list"}, []string{"sites", "history"}, []string{"sites", "rollback"},
		[]string{"accounts", "create"}, []string{"accounts", "topup"}, []string{"accounts", "balance"},
		[]string{"accounts", "statement"}, []string{"accounts", "dashboard"}, []string{"accounts", "list"},
		[]string{"node", "earnings"}, []string{"sim", "payments"},
	)
	for _, c := range cmds {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string{}, c...), h)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errb bytes.Buffer
				err := dispatch(context.Background(), args, &out, &errb)
				if code := exitCode(err); err != nil && code != 0 {
					t.Fatalf("exit %d (%v); stderr:\n%s", code, err, errb.String())
				}
				if out.Len()+errb.Len() == 0 {
					t.Fatal("printed no usage")
				}
			})
		}
	}
	for _, args := range [][]string{{"nope"}, {"sites", "nope"}, {}} {
		if code := exitCode(dispatch(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})); code != 2 {
			t.Errorf("verity %q: exit %d, want 2", args, code)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := dispatch(context.Background(), []string{"version"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "verity ") || !strings.Contains(out.String(), "go1.") {
		t.Fatalf("version printed %q", out.String())
	}
}
