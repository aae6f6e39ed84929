package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/siteclient"
)

// runDeploy builds a CAR of DIR, uploads it to the gateway for --site and
// waits until the site is published (R nodes hold it). It prints the root
// CID and the site's URL on stdout; progress goes to stderr.
func runDeploy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fl.SetOutput(stderr)
	site := fl.String("site", "", "site name (required)")
	gw := gatewayFlag(fl)
	token := fl.String("token", os.Getenv("VERITY_TOKEN"), "the site's deploy token (env VERITY_TOKEN)")
	account := fl.String("account", "", "the account the site is charged to (must exist; default: the deploy token's account, else the site's, else \"default\" when it exists); another account than the token's needs the admin token")
	wait := fl.Duration("wait", 5*time.Minute, "how long to wait for the site to be published (0: do not wait)")
	preview := fl.Bool("preview", false, "upload and pin without publishing; print the preview's own URL (publish it with: verity sites promote)")
	previewTTL := fl.String("preview-ttl", "", "how long the preview is kept, e.g. 7d or 48h (default: the gateway's, 7d)")
	asJSON := fl.Bool("json", false, "print one JSON object (site, root, url, ...) on stdout instead of lines; for CI")
	fl.Usage = func() {
		fmt.Fprintln(stderr, "usage: verity deploy DIR --site NAME [--preview [--preview-ttl 7d]] [--account A] [--json] [--gateway URL] [--token T]")
		fmt.Fprintln(stderr, "exit status: 0 deployed (published, or a preview pinned), 1 refused or failed, 2 usage error")
		fl.PrintDefaults()
	}
	pos, err := parseInterspersed(fl, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *site == "" {
		fl.Usage()
		return fmt.Errorf("deploy: want DIR and --site: %w", errUsage)
	}
	ttl, err := parseTTL(*previewTTL)
	if err != nil {
		return fmt.Errorf("deploy: --preview-ttl %q: %v: %w", *previewTTL, err, errUsage)
	}
	if *token == "" {
		return fmt.Errorf("deploy: no token: pass --token or set VERITY_TOKEN (verity sites create prints one): %w", errUsage)
	}

	c := siteclient.New(siteclient.Config{Gateway: *gw, Token: *token, OnRetry: func(err error, wait time.Duration) {
		fmt.Fprintf(stderr, "\n%v; sending again in %s\n", err, wait)
	}})
	// The token is checked before anything is built or sent.
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	_, err = c.Site(cctx, *site)
	cancel()
	if err != nil {
		return fmt.Errorf("deploy: nothing uploaded: the gateway refused site %q with this token: %w", *site, err)
	}
	warnings := siteWarnings(pos[0])
	for _, w := range warnings {
		fmt.Fprintln(stderr, "warning: "+w)
	}

	f, err := os.CreateTemp("", "verity-deploy-*.car")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	fmt.Fprintf(stderr, "building CAR of %s…\n", pos[0])
	root, err := importer.WriteCAR(ctx, pos[0], f, importer.Options{})
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "root %s, %s\n", root, humanBytes(size))

	bar := func(int64) {}
	if isTerminal(stderr) {
		bar = func(sent int64) { fmt.Fprintf(stderr, "\r%s", progressBar(sent, size)) }
	}
	out := deployOutput{Site: *site, Warnings: warnings}
	if *preview {
		rec, err := c.DeployPreview(ctx, *site, *account, ttl, f, size, bar)
		fmt.Fprintln(stderr)
		if err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
		fmt.Fprintf(stderr, "verified by the gateway (%d blocks); waiting for %d nodes to hold it…\n", rec.Blocks, rec.Replicas)
		if *wait > 0 {
			wctx, cancel := context.WithTimeout(ctx, *wait)
			defer cancel()
			if _, err := c.WaitPreviewPinned(wctx, *site, rec.Root, 200*time.Millisecond); err != nil {
				return fmt.Errorf("deploy: %w", err)
			}
		}
		fmt.Fprintf(stderr, "the preview expires %s\n", rec.Expires.Format(time.RFC3339))
		fmt.Fprintf(stderr, "publish it with: verity sites promote %s %s\n", *site, rec.Root)
		out.Root, out.URL, out.Preview, out.Blocks, out.Replicas = rec.Root, rec.URL, true, rec.Blocks, rec.Replicas
		out.Expires = &rec.Expires
		return out.print(stdout, *asJSON)
	}
	rec, err := c.DeployFor(ctx, *site, *account, f, size, bar)
	fmt.Fprintln(stderr)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if rec.Account != "" {
		fmt.Fprintf(stderr, "charged to account %s\n", rec.Account)
	}
	fmt.Fprintf(stderr, "verified by the gateway (%d blocks); waiting for %d nodes to hold it…\n", rec.Blocks, rec.Replicas)
	if *wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, *wait)
		defer cancel()
		if _, err := c.WaitPublished(wctx, *site, rec.Root, 200*time.Millisecond); err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
	}
	out.Root, out.URL, out.Account, out.Blocks, out.Replicas = rec.Root, siteURL(*gw, *site), rec.Account, rec.Blocks, rec.Replicas
	return out.print(stdout, *asJSON)
}

// deployOutput is what verity deploy prints on stdout: the root and the
// URL, one a line, or with --json this object.
type deployOutput struct {
	Site     string     `json:"site"`
	Root     string     `json:"root"`
	URL      string     `json:"url"`
	Preview  bool       `json:"preview,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"` // a preview's
	Account  string     `json:"account,omitempty"`
	Blocks   int        `json:"blocks"`
	Replicas int        `json:"replicas"`
	Warnings []string   `json:"warnings,omitempty"`
}

func (o deployOutput) print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(o)
	}
	_, err := fmt.Fprintf(w, "%s\n%s\n", o.Root, o.URL)
	return err
}

// isTerminal reports whether w is a terminal: progress is drawn only there
// (a CI log gets the steps, not a redrawn bar).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// maxWarnFiles bounds the HTML files siteWarnings reads.
const maxWarnFiles = 10000

// siteWarnings names what in dir will not work as the owner likely
// expects: no index.html at the root (the site's / answers 404), and HTML
// pages without the loader's script tag (visitors of those pages never
// get the worker).
func siteWarnings(dir string) []string {
	var out []string
	if fi, err := os.Stat(filepath.Join(dir, "index.html")); err != nil || !fi.Mode().IsRegular() {
		out = append(out, "no index.html at the root of "+dir+": the site's / answers 404")
	}
	var without []string
	seen := 0
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || seen >= maxWarnFiles {
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(strings.ToLower(d.Name()), ".html") {
			return nil
		}
		seen++
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		defer f.Close()
		head, _ := io.ReadAll(io.LimitReader(f, 1<<20))
		if !bytes.Contains(head, []byte("/verity.js")) {
			rel, _ := filepath.Rel(dir, path)
			without = append(without, filepath.ToSlash(rel))
		}
		return nil
	})
	if len(without) > 0 {
		shown := without[:min(len(without), 5)]
		more := ""
		if len(without) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(without)-len(shown))
		}
		out = append(out, fmt.Sprintf("%d HTML page(s) lack <script src=\"/verity.js\" async></script>, so their visitors never get the worker: %s%s",
			len(without), strings.Join(shown, ", "), more))
	}
	return out
}

// parseTTL parses a preview's lifetime: a Go duration ("48h") or whole
// days ("7d"); "" is 0 (the gateway's default).
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("want a positive number of days or a duration such as 48h")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	t, err := time.ParseDuration(s)
	if err != nil || t <= 0 {
		return 0, fmt.Errorf("want a positive number of days or a duration such as 48h")
	}
	return t, nil
}

// siteURL guesses the site's origin from the gateway URL: NAME.<host>.
func siteURL(gw, site string) string {
	scheme, host, ok := strings.Cut(strings.TrimRight(gw, "/"), "://")
	if !ok {
		return gw
	}
	if h, port, found := strings.Cut(host, ":"); found && (h == "127.0.0.1" || h == "localhost") {
		return scheme + "://" + site + ".localhost:" + port + "/"
	}
	return scheme + "://" + site + "." + host + "/"
}

func progressBar(sent, total int64) string {
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(sent) / float64(total)
	}
	n := int(frac * width)
	return fmt.Sprintf("uploading [%s%s] %3.0f%% %s / %s", strings.Repeat("#", n), strings.Repeat(".", width-n),
		frac*100, humanBytes(sent), humanBytes(total))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
