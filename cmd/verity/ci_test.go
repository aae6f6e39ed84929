package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/verity-cdn/verity/internal/testutil"
)

// ciExample is a CI job of examples/ci: the environment it sets, the
// shell it runs, and the command that installs verity (which the test
// stands in for with this binary).
type ciExample struct {
	file    string
	env     map[string]string
	scripts []string
	install string
}

// githubSecret is a ${{ secrets.NAME }} expression.
var githubSecret = regexp.MustCompile(`^\$\{\{\s*secrets\.([A-Z_]+)\s*\}\}$`)

func loadGitHubWorkflow(t *testing.T, path string, secrets map[string]string) ciExample {
	t.Helper()
	var wf struct {
		Jobs map[string]struct {
			Env   map[string]string
			Steps []struct {
				Name, Run, Uses string
				Env             map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(readFile(t, path), &wf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	job, ok := wf.Jobs["deploy"]
	if !ok {
		t.Fatalf("%s: no deploy job", path)
	}
	ex := ciExample{file: path, env: map[string]string{}}
	set := func(env map[string]string) {
		for k, v := range env {
			if m := githubSecret.FindStringSubmatch(v); m != nil {
				s, ok := secrets[m[1]]
				if !ok {
					t.Fatalf("%s: %s reads secret %s, which the docs do not ask for", path, k, m[1])
				}
				v = s
			} else if strings.Contains(v, "${{") {
				t.Fatalf("%s: %s=%q: an expression the test does not evaluate", path, k, v)
			}
			ex.env[k] = v
		}
	}
	set(job.Env)
	for _, st := range job.Steps {
		switch {
		case st.Uses != "":
		case st.Name == "Install verity":
			ex.install = st.Run
		default:
			set(st.Env)
			ex.scripts = append(ex.scripts, st.Run)
		}
	}
	return ex
}

func loadGitLabJob(t *testing.T, path string, secrets map[string]string) ciExample {
	t.Helper()
	var jobs map[string]struct {
		Variables    map[string]string
		BeforeScript []string `yaml:"before_script"`
		Script       []string
	}
	if err := yaml.Unmarshal(readFile(t, path), &jobs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	job, ok := jobs["deploy"]
	if !ok {
		t.Fatalf("%s: no deploy job", path)
	}
	ex := ciExample{file: path, env: map[string]string{}, install: strings.Join(job.BeforeScript, "\n")}
	for k, v := range secrets { // project CI/CD variables
		ex.env[k] = v
	}
	for k, v := range job.Variables {
		ex.env[k] = v
	}
	// The runner runs the script's lines in one shell.
	ex.scripts = []string{strings.Join(job.Script, "\n")}
	return ex
}

// The CI jobs docs/deploying-a-site.md shows (examples/ci, included in
// the doc as they are) publish a site: the GitHub Actions workflow's run
// steps and the GitLab job's script, run by bash as the runners run
// them, with the secrets in the variables the files name, against a
// `verity gateway` and two `verity node`s. Installing verity is the one
// step not run: the test puts this binary on PATH as verity.
func TestCIExamplesDeploy(t *testing.T) {
	doc := string(readFile(t, "../../docs/deploying-a-site.md"))
	for _, f := range []string{"../../examples/ci/github-actions.yml", "../../examples/ci/gitlab-ci.yml"} {
		if !strings.Contains(doc, "```yaml\n"+string(readFile(t, f))+"```\n") {
			t.Fatalf("docs/deploying-a-site.md does not show %s as it is", f)
		}
	}
	gw := startCLINetwork(t)
	token, err := runCmd(t, runSites, "create", "blog", "--gateway", gw, "--admin-token", cliAdmin)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"VERITY_GATEWAY": gw, "VERITY_TOKEN": token}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	wrapper := "#!/bin/sh\n" + runMainEnv + "=1 exec '" + exe + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "verity"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, ex := range []ciExample{
		loadGitHubWorkflow(t, "../../examples/ci/github-actions.yml", secrets),
		loadGitLabJob(t, "../../examples/ci/gitlab-ci.yml", secrets),
	} {
		t.Run(filepath.Base(ex.file), func(t *testing.T) {
			if !strings.Contains(ex.install, "go install github.com/verity-cdn/verity/cmd/verity@") {
				t.Fatalf("the job installs verity with %q", ex.install)
			}
			checkout := t.TempDir()
			page := "<h1>deployed by " + ex.file + "</h1>"
			if err := os.MkdirAll(filepath.Join(checkout, "public"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(checkout, "public", "index.html"), []byte(page), 0o644); err != nil {
				t.Fatal(err)
			}
			output, summary := filepath.Join(checkout, "output"), filepath.Join(checkout, "summary")
			env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + checkout, "GITHUB_OUTPUT=" + output, "GITHUB_STEP_SUMMARY=" + summary}
			for k, v := range ex.env {
				env = append(env, k+"="+v)
			}
			for _, script := range ex.scripts {
				ctx, cancel := context.WithTimeout(t.Context(), testutil.Scale(90*time.Second))
				cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script)
				cmd.Dir, cmd.Env = checkout, env
				out, err := cmd.CombinedOutput()
				cancel()
				if err != nil {
					t.Fatalf("%s: %v\n%s", script, err, out)
				}
			}
			var res struct{ Site, Root, URL string }
			if err := json.Unmarshal(readFile(t, filepath.Join(checkout, "deploy.json")), &res); err != nil || res.Site != "blog" || res.Root == "" {
				t.Fatalf("deploy.json: %+v %v", res, err)
			}
			if !strings.HasPrefix(res.URL, "http://blog.localhost:") {
				t.Fatalf("url %q", res.URL)
			}
			if strings.Contains(ex.file, "github") {
				if got := string(readFile(t, output)); got != "url="+res.URL+"\n" {
					t.Fatalf("step output %q", got)
				}
			}
			// Published: the site's origin serves what the job deployed.
			req, _ := http.NewRequest(http.MethodGet, gw+"/", nil)
			req.Host = "blog.localhost"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != page {
				t.Fatalf("the site serves %q, want %q", body, page)
			}
		})
	}
}
