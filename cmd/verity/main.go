// Command verity is the one Verity binary: devnet, gateway, node, import,
// deploy, sites, accounts, operators, sim.
//
// Each subcommand lives in its own file (devnet.go, gateway.go, node.go,
// import.go, deploy.go, sites.go): it parses its flags into the part's Config, calls New, then
// Run(ctx); gateway.go composes three parts on one listener, the
// coordinator, the control plane and the site edge. This file only
// dispatches and wires SIGINT/SIGTERM to ctx.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand: it parses args and runs until ctx is done.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{
	"devnet":    {"run gateway + 2 nodes + the demo site in one process", runDevnet},
	"gateway":   {"run the HTTP gateway for site origins", runGateway},
	"node":      {"run a storage node (trustless HTTP + WebTransport); 'node status': a running node's status; 'node earnings': what it was paid", runNode},
	"import":    {"import a file or directory; print its root CID", runImport},
	"events":    {"print the event feed of a gateway (--follow to keep watching)", runEvents},
	"sim":       {"simulate the network: 'sim payments' (settlement policies at scale)", runSim},
	"deploy":    {"upload a directory as a site's new version; wait until it is published", runDeploy},
	"sites":     {"manage sites on a gateway: create, list, history, rollback", runSites},
	"accounts":  {"manage accounts: create, topup (dev faucet), balance, statement, dashboard", runAccounts},
	"operators": {"manage node operators' credentials: create, revoke, list", runOperators},
	"keys":      {"manage S3 access keys of an account: create, list, revoke", runKeys},
	"nodes":     {"list the nodes a gateway knows, with state, holdings and last heartbeat (admin)", runNodes},
	"version":   {"print the version and the source revision it was built from", runVersion},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "verity:", err)
		}
		os.Exit(exitCode(err))
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		usage(stderr)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	cmd, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q: %w", args[0], errUsage)
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

var errUsage = errors.New("usage error")

// isHelp reports whether arg asks for help: -h, --help, -help or help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "--help", "-help", "help":
		return true
	}
	return false
}

// exitCode is 0 for a help request (-h on any command), 2 for a usage
// error, 1 for anything else.
func exitCode(err error) int {
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: verity <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrun 'verity <command> -h' for its flags")
}
