package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is stamped by `make dist` (-ldflags "-X main.version=v1.2.3");
// otherwise it is the module version from the build info, "(devel)" for a
// build from a checkout.
var version = ""

// buildVersion returns the version and the VCS revision (with "+dirty" for
// a build from a modified tree) recorded in the binary.
func buildVersion() (ver, rev string) {
	ver = version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if ver == "" {
			ver = "unknown"
		}
		return ver, "unknown"
	}
	if ver == "" {
		ver = info.Main.Version
	}
	rev = "unknown"
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && rev != "unknown" {
		rev += "+dirty"
	}
	return ver, rev
}

// runVersion prints `verity VERSION (REVISION, GOVERSION OS/ARCH)`.
func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprintln(stderr, "usage: verity version")
			return nil
		}
		return fmt.Errorf("version takes no arguments: %w", errUsage)
	}
	ver, rev := buildVersion()
	fmt.Fprintf(stdout, "verity %s (%s, %s %s/%s)\n", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
