package main

import (
	"context"
	"time"

	"github.com/verity-cdn/verity/devnet"
)

// runDevnet runs d until the returned stop is called, once it is ready
// (within ready). On error nothing is left running.
func runDevnet(ctx context.Context, d *devnet.Devnet, ready time.Duration) (stop func(), err error) {
	runCtx, stopRun := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(runCtx) }()
	stop = func() {
		stopRun()
		<-runErr
	}
	readyCtx, readyCancel := context.WithTimeout(ctx, ready)
	err = d.WaitReady(readyCtx)
	readyCancel()
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}
