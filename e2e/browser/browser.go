package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultExecPath is Debian's Chromium.
const DefaultExecPath = "/usr/bin/chromium"

// BaseFlags are the command-line switches every Browser gets.
var BaseFlags = []string{
	"headless",
	"no-sandbox",
	"disable-gpu",
	"no-first-run",
	"no-default-browser-check",
	"disable-background-networking",
	"disable-component-update",
	"disable-sync",
	"disable-extensions",
	"disable-dev-shm-usage",
	"mute-audio",
	"password-store=basic",
	"use-mock-keychain",
}

// Config describes a Browser. The zero value of every field but UserDataDir
// is a sensible default.
type Config struct {
	// ExecPath is the browser binary. Default: DefaultExecPath.
	ExecPath string
	// UserDataDir is the profile directory; it must be empty or missing
	// (a test's t.TempDir()). Required.
	UserDataDir string
	// Flags are extra switches, "name" or "name=value", after BaseFlags
	// (for example "disable-quic", or "js-flags=--trace-wasm-compilation-times";
	// leading dashes are dropped).
	Flags []string
	// Env is extra environment for the browser process, "NAME=value"
	// (for example HOME=dir, whose .pki/nssdb holds the roots it trusts).
	Env []string
	// StartTimeout bounds the browser's start. Default 30s.
	StartTimeout time.Duration
	// WaitTimeout bounds each wait of the helpers (the service worker
	// taking control, a reply from the worker). Default 15s.
	WaitTimeout time.Duration
	// Output receives the browser's stderr. Default: discarded.
	Output io.Writer
	// Logger logs the browser's life cycle. Default: discarded.
	Logger *slog.Logger
}

func (c *Config) normalize() error {
	if c.ExecPath == "" {
		c.ExecPath = DefaultExecPath
	}
	if c.UserDataDir == "" {
		return errors.New("browser: Config.UserDataDir is required")
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.WaitTimeout <= 0 {
		c.WaitTimeout = 15 * time.Second
	}
	if c.Output == nil {
		c.Output = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Browser is one Chromium process with one tab.
type Browser struct {
	cfg Config

	allocCancel context.CancelFunc
	ctx         context.Context // the tab's chromedp context
	cancel      context.CancelFunc

	mu  sync.Mutex
	cmd *exec.Cmd

	closeOnce sync.Once
}

// CheckInstalled returns ErrNoBrowser when path (default DefaultExecPath) is
// not an executable file.
func CheckInstalled(path string) error {
	if path == "" {
		path = DefaultExecPath
	}
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: %s", ErrNoBrowser, path)
	}
	return nil
}

// Start launches the browser and opens its tab. ctx bounds only the start;
// the browser lives until Close.
func Start(ctx context.Context, cfg Config) (*Browser, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	if err := CheckInstalled(cfg.ExecPath); err != nil {
		return nil, err
	}
	// A Chromium that has not opened its first tab by StartTimeout is
	// killed and started once more: on a loaded machine a start now and
	// then stalls far longer than the next one takes. The error of a
	// start that fails twice carries the end of the browser's output.
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		tail := &tailWriter{max: 2048}
		c := cfg
		c.Output = io.MultiWriter(cfg.Output, tail)
		var b *Browser
		b, err = start(ctx, c)
		if err == nil {
			return b, nil
		}
		if out := tail.String(); out != "" {
			err = fmt.Errorf("%w; the browser's output ended with:\n%s", err, out)
		}
		var te *TimeoutError
		if !errors.As(err, &te) || ctx.Err() != nil {
			break
		}
		cfg.Logger.Warn("browser start timed out; starting it again", "attempt", attempt, "err", err)
	}
	return nil, err
}

// start launches the browser once.
func start(ctx context.Context, cfg Config) (*Browser, error) {
	if err := os.MkdirAll(cfg.UserDataDir, 0o700); err != nil {
		return nil, fmt.Errorf("browser: profile dir: %w", err)
	}
	becomeSubreaper()

	b := &Browser{cfg: cfg}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(cfg.ExecPath),
		chromedp.UserDataDir(cfg.UserDataDir),
		chromedp.CombinedOutput(cfg.Output),
		chromedp.Env(cfg.Env...),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			if cmd.SysProcAttr == nil {
				cmd.SysProcAttr = new(syscall.SysProcAttr)
			}
			// Its own process group, so Close can kill every helper;
			// killed with the test process.
			cmd.SysProcAttr.Setpgid = true
			cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
			b.mu.Lock()
			b.cmd = cmd
			b.mu.Unlock()
		}),
	}
	for _, f := range append(append([]string(nil), BaseFlags...), cfg.Flags...) {
		opts = append(opts, flagOption(f))
	}

	// The allocator and the browser live on a background context: a
	// deadline on the first Run's context would stop the whole browser.
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	tabCtx, cancel := chromedp.NewContext(allocCtx)
	b.allocCancel, b.ctx, b.cancel = allocCancel, tabCtx, cancel

	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tabCtx, chromedp.Navigate("about:blank")) }()
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-started:
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = &TimeoutError{What: "the browser to start", After: cfg.StartTimeout.String()}
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("browser: start %s: %w", cfg.ExecPath, err)
	}
	setLive(b.pid(), true)
	cfg.Logger.Info("browser started", "pid", b.pid(), "profile", cfg.UserDataDir)
	return b, nil
}

func flagOption(f string) chromedp.ExecAllocatorOption {
	name, value := splitFlag(f)
	return chromedp.Flag(name, value)
}

// splitFlag splits a switch, "name" or "name=value", into its name and
// value (true for a bare name). Leading dashes are dropped: chromedp adds
// "--" itself, and Chromium silently ignores "----js-flags=…".
func splitFlag(f string) (string, any) {
	f = strings.TrimLeft(f, "-")
	if name, value, ok := strings.Cut(f, "="); ok {
		return name, value
	}
	return f, true
}

func (b *Browser) pid() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Context returns the tab's chromedp context, for chromedp.Run and
// chromedp.Call. Derive per-action deadlines from it.
func (b *Browser) Context() context.Context { return b.ctx }

// Close stops the browser, kills what is left of its process group and of
// the processes using its profile, and reaps them. It is idempotent and
// always returns nil: whatever did not stop gracefully is killed.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() {
		pid := b.pid()
		setLive(pid, false)
		if b.ctx != nil {
			cctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			err := chromedp.Cancel(cctx)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				b.cfg.Logger.Debug("browser close", "err", err)
			}
			b.cancel()
		}
		if pid > 0 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
		if b.allocCancel != nil {
			b.allocCancel() // waits for the browser process
		}
		killUsing("--user-data-dir=" + b.cfg.UserDataDir)
		reapOrphans(pid, 2*time.Second)
		b.cfg.Logger.Info("browser closed", "pid", pid)
	})
	return nil
}

// NoWebTransportFlags make every WebTransport connection to a node fail: the
// page and its service worker still have the WebTransport API, but the
// browser ignores serverCertificateHashes, so the opening handshake with a
// node's self-signed certificate fails. (In Chromium 156 --disable-quic,
// --disable-features=WebTransport and --disable-blink-features=WebTransport
// all leave WebTransport working.)
var NoWebTransportFlags = []string{"disable-blink-features=WebTransportCustomCertificates"}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
