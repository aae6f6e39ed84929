package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// cliAdmin is the admin token of startCLINetwork's gateway.
const cliAdmin = "vat_cli-test"

// startCLINetwork runs `verity gateway` and two `verity node`s joined to
// it, as an operator would, and returns the gateway's URL.
func startCLINetwork(t *testing.T) string {
	t.Helper()
	gw := startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-token", cliAdmin, "--allow-private-addrs"}, "gateway: ")
	opToken := createOperator(t, gw, cliAdmin)
	for range 2 {
		startCommand(t, runNode, []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--webtransport", "127.0.0.1:0", "--webrtc", "127.0.0.1:0",
			"--log-level", "warn", "--coordinator", gw, "--operator-token", opToken}, "id: ")
	}
	return gw
}

// runCmd runs a command with args and returns its stdout, trimmed; its
// stderr is logged when it fails. The nodes join (URL proofs, then
// audits of what they pin) while a first deploy waits: on a busy machine
// that takes a while.
func runCmd(t *testing.T, cmd func(context.Context, []string, io.Writer, io.Writer) error, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testutil.Scale(60*time.Second))
	defer cancel()
	var out, errb bytes.Buffer
	err := cmd(ctx, args, &out, &errb)
	if err != nil {
		t.Logf("%v: stderr: %s", args, errb.String())
	}
	return strings.TrimSpace(out.String()), err
}
