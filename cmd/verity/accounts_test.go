package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/siteclient"
	"github.com/verity-cdn/verity/internal/testutil"
)

// The accounts commands against a gateway command with the faucet: create,
// top up, balance, statement, dashboard, a site deployed for the account,
// node earnings read with the node key, and the errors.
func TestAccountsCommands(t *testing.T) {
	const admin = "vat_cli-acct"
	gw := startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-token", admin,
		"--faucet", "--replicas", "1", "--allow-private-addrs"}, "gateway: ")
	nodeDir := t.TempDir()
	nodeHTTP := "127.0.0.1:" + strconv.Itoa(testutil.FreePorts(t, 1))
	nodeID := startCommand(t, runNode, []string{"--data", nodeDir, "--http", nodeHTTP, "--webtransport", "127.0.0.1:0", "--webrtc", "127.0.0.1:0",
		"--log-level", "warn", "--coordinator", gw, "--operator-token", createOperator(t, gw, admin)}, "id: ")
	run := func(cmd func(context.Context, []string, io.Writer, io.Writer) error, args ...string) (string, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), testutil.Scale(30*time.Second))
		defer cancel()
		var out, errb bytes.Buffer
		err := cmd(ctx, append(args, "--gateway", gw), &out, &errb)
		return strings.TrimSpace(out.String()), errb.String(), err
	}
	acct := func(args ...string) string {
		t.Helper()
		out, errs, err := run(runAccounts, append(args, "--admin-token", admin)...)
		if err != nil {
			t.Fatalf("accounts %v: %v (%s)", args, err, errs)
		}
		return out
	}

	if out := acct("create", "acme", "--freeze-below", "1MiB"); !strings.Contains(out, "account acme created") || !strings.Contains(out, "1.0 MiB") {
		t.Fatalf("create: %q", out)
	}
	if out := acct("topup", "acme", "10GiB"); !strings.Contains(out, "balance 10737418240 bytes") || strings.Contains(out, "FROZEN") {
		t.Fatalf("topup: %q", out)
	}
	if out := acct("balance", "acme"); !strings.Contains(out, "acme: balance 10737418240 bytes (10.0 GiB), active") {
		t.Fatalf("balance: %q", out)
	}
	var a ledger.Account
	if err := json.Unmarshal([]byte(acct("balance", "acme", "--json")), &a); err != nil || a.Balance != 10<<30 || a.FreezeBelow != 1<<20 {
		t.Fatalf("balance --json: %+v %v", a, err)
	}
	st := acct("statement", "acme", "--since", "1h")
	lines := strings.Split(st, "\n")
	if len(lines) != 3 || strings.Fields(lines[1])[1] != "create" ||
		strings.Join(strings.Fields(lines[2])[1:4], " ") != "topup +10737418240 10737418240" {
		t.Fatalf("statement:\n%s", st)
	}
	if out := acct("dashboard", "acme"); !strings.Contains(out, "spent 0 bytes") {
		t.Fatalf("dashboard: %q", out)
	}
	if out := acct("list"); !strings.Contains(out, "acme") {
		t.Fatalf("list: %q", out)
	}

	// A site charged to acme, deployed with its own token.
	token, errs, err := run(runSites, "create", "blog", "--account", "acme", "--admin-token", admin)
	if err != nil {
		t.Fatalf("sites create: %v %s", err, errs)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>acct</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, err := run(runDeploy, dir, "--site", "blog", "--token", token, "--account", "acme"); err != nil || !strings.Contains(errs, "charged to account acme") {
		t.Fatalf("deploy: %v %s", err, errs)
	}
	if out, errs, err := run(runSites, "list", "--admin-token", admin); err != nil || !strings.Contains(out, "blog  acme") {
		t.Fatalf("sites list: %q %v %s", out, err, errs)
	}
	st2, err := siteclient.New(siteclient.Config{Gateway: gw, Token: admin}).Site(t.Context(), "blog")
	if err != nil || st2.Site == nil || st2.Site.Account != "acme" {
		t.Fatalf("site %+v %v", st2.Site, err)
	}

	// Errors: unknown account, invalid name, no token, wrong token, an
	// unknown account for a deploy.
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"balance", "nobody", "--admin-token", admin}, "404 Not Found: ledger: unknown account"},
		{[]string{"topup", "nobody", "1", "--admin-token", admin}, "404 Not Found"},
		{[]string{"create", "Bad!", "--admin-token", admin}, "invalid account name \"Bad!\""},
		{[]string{"balance", "acme"}, "401 Unauthorized"},
		{[]string{"balance", "acme", "--admin-token", "vat_wrong"}, "403 Forbidden"},
		{[]string{"create", "acme", "--admin-token", admin}, "409 Conflict"},
	} {
		_, _, err := run(runAccounts, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("accounts %v: %v, want %q", c.args, err, c.msg)
		}
	}
	if _, _, err := run(runAccounts, "topup", "acme", "lots", "--admin-token", admin); !errors.Is(err, errUsage) {
		t.Errorf("topup lots: %v", err)
	}
	if _, _, err := run(runDeploy, dir, "--site", "blog", "--token", admin, "--account", "nobody"); err == nil || !strings.Contains(err.Error(), "verity accounts create nobody") {
		t.Errorf("deploy for unknown account: %v", err)
	}

	// Earnings, read by the node with its key once it joined, or by the
	// admin with --node.
	var out string
	testutil.EventuallyErr(t, 20*time.Second, "the node's earnings (once it joined)", func() error {
		out, errs, err = run(runNode, "earnings", "--data", nodeDir, "--http", nodeHTTP)
		if err != nil {
			return fmt.Errorf("%v %s", err, errs)
		}
		return nil
	})
	if !strings.Contains(out, "node "+nodeID+": settled 0 bytes") || !strings.Contains(out, "pending settlement: 0 bytes") {
		t.Fatalf("node earnings: %q %s", out, errs)
	}
	if out, _, err := run(runNode, "earnings", "--node", nodeID, "--admin-token", admin); err != nil || !strings.Contains(out, "settled 0 bytes") {
		t.Fatalf("node earnings --node: %q %v", out, err)
	}
	if _, _, err := run(runNode, "earnings", "--node", nodeID); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("node earnings without token: %v", err)
	}
	if _, _, err := run(runNode, "earnings", "--data", t.TempDir()); err == nil || !strings.Contains(err.Error(), "identity.key") {
		t.Fatalf("node earnings without a key: %v", err)
	}
}

// Without --faucet, topup is refused with the reason.
func TestAccountsTopUpNeedsFaucet(t *testing.T) {
	const admin = "vat_cli-nofaucet"
	gw := startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-token", admin}, "gateway: ")
	var out, errb bytes.Buffer
	if err := runAccounts(t.Context(), []string{"create", "acme", "--gateway", gw, "--admin-token", admin}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	err := runAccounts(t.Context(), []string{"topup", "acme", "1GiB", "--gateway", gw, "--admin-token", admin}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "--faucet") {
		t.Fatalf("topup without faucet: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "1": 1, "4KiB": 4096, "512MiB": 512 << 20, "10GiB": 10 << 30, "1TiB": 1 << 40, "7B": 7} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5GiB", "99999999999TiB", "GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
