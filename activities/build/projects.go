// Package build turns a commit of a configured GitLab project into an image
// in the private registry: download the repository archive at the commit,
// build it on the Docker Engine, push it, and confirm the digest by reading
// it back from the registry.
package build

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Project is one project Tenantflow builds, from deploy/projects.yaml: a
// GitLab project, or any git repository (Git).
type Project struct {
	// Path is the project's path in GitLab, e.g. "group/app"; for a git
	// project, the name builds go by (the same form).
	Path string `yaml:"path" json:"path"`
	// Git, when set, is where the project's source is: a git remote
	// (https://, http://, ssh://, git://) or a repository on the worker's
	// and the API's disk (an absolute path or file://). GitLab is then
	// not asked, and no commit status is reported.
	Git string `yaml:"git,omitempty" json:"git,omitempty"`
	// Image is the repository in the private registry, e.g. "tenants/app".
	Image string `yaml:"image" json:"image"`
	// Dockerfile is the path of the Dockerfile inside the repository.
	Dockerfile string `yaml:"dockerfile,omitempty" json:"dockerfile,omitempty"`
	// BuildArgs are passed to the build; values may use ${sha}, ${shortSha}
	// and ${ref}.
	BuildArgs map[string]string `yaml:"buildArgs,omitempty" json:"buildArgs,omitempty"`
	// Branches whose pushes trigger a build through the webhook.
	Branches []string `yaml:"branches,omitempty" json:"branches,omitempty"`
	// Tags: whether tag pushes trigger a build (tagged with the tag's name too).
	Tags bool `yaml:"tags,omitempty" json:"tags,omitempty"`
}

// Projects are the configured projects by path.
type Projects map[string]*Project

var (
	projectPath = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)+$`)
	imageRepo   = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)
	buildArgRef = regexp.MustCompile(`\$\{([^}]*)\}`)
	gitRemote   = regexp.MustCompile(`^(https?|ssh|git|file)://[^\s]+$`)
)

// LoadProjects reads and validates a projects file.
func LoadProjects(path string) (Projects, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("projects file: %w", err)
	}
	return ParseProjects(data)
}

// ParseProjects reads {"projects": [...]} strictly: unknown keys are errors.
func ParseProjects(data []byte) (Projects, error) {
	var doc struct {
		Projects []*Project `yaml:"projects"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse projects: %w", err)
	}
	out := Projects{}
	for i, p := range doc.Projects {
		where := fmt.Sprintf("project %d (%s)", i+1, p.Path)
		if !projectPath.MatchString(p.Path) {
			return nil, fmt.Errorf("%s: path must be a GitLab project path like group/app", where)
		}
		if out[p.Path] != nil {
			return nil, fmt.Errorf("%s: listed twice", where)
		}
		if !imageRepo.MatchString(p.Image) {
			return nil, fmt.Errorf("%s: image %q is not a registry repository name (lowercase, e.g. tenants/app)", where, p.Image)
		}
		if p.Git != "" && !gitRemote.MatchString(p.Git) && !strings.HasPrefix(p.Git, "/") {
			return nil, fmt.Errorf("%s: git %q: want an https://, http://, ssh://, git:// or file:// URL, or an absolute path", where, p.Git)
		}
		if p.Dockerfile == "" {
			p.Dockerfile = "Dockerfile"
		}
		if strings.HasPrefix(p.Dockerfile, "/") || strings.Contains(p.Dockerfile, "..") {
			return nil, fmt.Errorf("%s: dockerfile must be a relative path inside the repository", where)
		}
		for k, v := range p.BuildArgs {
			for _, m := range buildArgRef.FindAllStringSubmatch(v, -1) {
				if m[1] != "sha" && m[1] != "shortSha" && m[1] != "ref" {
					return nil, fmt.Errorf("%s: build arg %s: unknown variable ${%s} (use sha, shortSha, ref)", where, k, m[1])
				}
			}
		}
		out[p.Path] = p
	}
	return out, nil
}

// NeedGitLab tells whether a project of ps is GitLab's.
func (ps Projects) NeedGitLab() bool {
	for _, p := range ps {
		if p.Git == "" {
			return true
		}
	}
	return false
}

// Names lists the configured project paths, sorted, for error messages.
func (ps Projects) Names() []string {
	out := make([]string, 0, len(ps))
	for n := range ps {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// BuildsBranch reports whether a push to branch should build.
func (p *Project) BuildsBranch(branch string) bool {
	for _, b := range p.Branches {
		if b == branch {
			return true
		}
	}
	return false
}

// Args renders the build args for one commit. It is pure.
func (p *Project) Args(sha, ref string) map[string]string {
	short := sha
	if len(short) > 12 {
		short = short[:12]
	}
	out := make(map[string]string, len(p.BuildArgs))
	for k, v := range p.BuildArgs {
		out[k] = buildArgRef.ReplaceAllStringFunc(v, func(m string) string {
			switch m {
			case "${sha}":
				return sha
			case "${shortSha}":
				return short
			default:
				return ref
			}
		})
	}
	return out
}
