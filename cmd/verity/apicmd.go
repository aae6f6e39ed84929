package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/verity-cdn/verity/internal/siteclient"
)

// apiCommand is the set-up the API commands (verity accounts, sites,
// operators) share: the subcommand, a flag set with --gateway and
// --admin-token, the positional arguments, the usage text.
type apiCommand struct {
	name, sub string
	usage     string
	stderr    io.Writer
	fl        *flag.FlagSet
	gateway   *string
	admin     *string
	pos       []string
}

// newAPICommand takes the subcommand off args. With no arguments it
// prints usage and fails with errUsage; with a help flag it prints usage
// and returns a nil command and no error: the caller returns nil. Flags of
// the subcommand are defined on cmd.fl before cmd.parse.
func newAPICommand(name, usage string, args []string, stderr io.Writer) (cmd *apiCommand, rest []string, err error) {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(stderr, usage)
		if len(args) == 0 {
			return nil, nil, errUsage
		}
		return nil, nil, nil
	}
	cmd = &apiCommand{name: name, sub: args[0], usage: usage, stderr: stderr}
	cmd.fl = flag.NewFlagSet(name+" "+cmd.sub, flag.ContinueOnError)
	cmd.fl.SetOutput(stderr)
	cmd.gateway = gatewayFlag(cmd.fl)
	cmd.admin = adminTokenFlag(cmd.fl)
	return cmd, args[1:], nil
}

// parse parses the subcommand's flags and positional arguments, in any
// order.
func (a *apiCommand) parse(args []string) error {
	pos, err := parseInterspersed(a.fl, args)
	a.pos = pos
	return err
}

// client is a client of the gateway's API with token (the admin token
// when empty), and a context bounding the command to a minute.
func (a *apiCommand) client(ctx context.Context, token string) (*siteclient.Client, context.Context, context.CancelFunc) {
	if token == "" {
		token = *a.admin
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	return siteclient.New(siteclient.Config{Gateway: *a.gateway, Token: token}), ctx, cancel
}

// want fails with errUsage, after the usage, unless there are n
// positional arguments (what names them).
func (a *apiCommand) want(n int, what string) error {
	if len(a.pos) != n {
		fmt.Fprintln(a.stderr, a.usage)
		return fmt.Errorf("%s %s: want %s: %w", a.name, a.sub, what, errUsage)
	}
	return nil
}

// one is the one positional argument (what names it), or errUsage.
func (a *apiCommand) one(what string) (string, error) {
	if err := a.want(1, "one "+what); err != nil {
		return "", err
	}
	return a.pos[0], nil
}
