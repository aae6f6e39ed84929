package control

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// A deploy (or preview) whose _headers or _redirects does not parse, or
// whose _redirects loops, is refused with 422 bad_site_file naming the file, the line and the file's
// block, and leaves nothing behind; valid files are accepted.
func TestDeployRefusesBadSiteFiles(t *testing.T) {
	tg, _, dir := deployGateway(t, 0)
	token := tg.createSite(t, "blog")
	for _, tc := range []struct {
		name, file, content, query, want string
	}{
		{"refused header", "_headers", "/*\n  Set-Cookie: a=b\n", "", "_headers: headers: invalid _headers file: line 2: header Set-Cookie"},
		{"header line first", "_headers", "  X-A: 1\n", "", "line 1"},
		{"as a preview", "_headers", "/*\n  Content-Length: 1\n", "?preview=1", "Content-Length"},
		{"bad redirect", "_redirects", "/a /b 301\n/c\n", "", "_redirects: redirects: invalid _redirects file: line 2"},
		{"redirect loop", "_redirects", "/a /b 301\n/b /a 302\n", "", "redirect loop for paths the site does not have (line 1 redirects /a to /b, line 2 redirects /b to /a)"},
		{"loop through a missing page", "_redirects", "/* /nosuch.html 301\n", "", "line 1 redirects /_verity-loop-check_ to /nosuch.html, line 1 redirects /nosuch.html to /nosuch.html"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := sitetest.Files()
			files[tc.file] = []byte(tc.content)
			car, _ := siteCAR(t, files)
			resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy"+tc.query, token, car)
			var e api.Error
			fileCID, _ := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, []byte(tc.content))
			if resp.StatusCode != http.StatusUnprocessableEntity || json.Unmarshal(body, &e) != nil || e.Code != CodeSiteFile ||
				e.CID != fileCID.String() || !strings.Contains(e.Error, tc.want) {
				t.Fatalf("%d %s; want 422 %s naming %q and block %s", resp.StatusCode, body, CodeSiteFile, tc.want, fileCID)
			}
		})
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "content")); len(ents) != 0 {
		t.Fatalf("content holds %d files after refusals", len(ents))
	}
	files := sitetest.Files()
	files["_headers"] = []byte("/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n")
	// Chains that end at a page the site has are no loops (the usual
	// "send missing pages home" rules), an escaped name included.
	files["_redirects"] = []byte("/old /new 301\n/notes /docs/a%20b.txt 302\n/about/* /about/ 301\n/* /index.html 301\n")
	car, _ := siteCAR(t, files)
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, car); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("valid site files: %d %s", resp.StatusCode, body)
	}
}
