//go:build !linux

package browser

import "time"

func becomeSubreaper()               {}
func killUsing(string)               {}
func reapOrphans(int, time.Duration) {}

func setLive(int, bool) {}
