package gitlabfake

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // git object ids are SHA-1
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Author is who the fake's commits are authored and committed by.
const (
	AuthorName  = "Tenantflow Test"
	AuthorEmail = "test@tenantflow.example"
)

// ZeroSHA is git's "no object", the before of a new branch in push events.
const ZeroSHA = "0000000000000000000000000000000000000000"

// epoch dates the first commit of a server; each later commit is one
// minute younger, so SHAs are the same on every run of a test.
var epoch = time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)

// commit is a git commit object with the full tree it records.
type commit struct {
	sha     string
	tree    string
	parents []string
	message string // as stored by git: ends with a newline
	when    time.Time
	files   map[string][]byte // the whole tree, path -> content

	// Changes against the first parent, as push events list them.
	added, modified, removed []string
}

func (c *commit) title() string {
	t, _, _ := strings.Cut(c.message, "\n")
	return t
}

// Project is a repository of the fake: branches, tags and commits, and the
// external commit statuses posted on it.
type Project struct {
	// ID is GitLab's numeric project id, Path its full path
	// ("group/app"). Both are fixed when the project is added.
	ID   int64
	Path string

	s             *Server
	created       time.Time
	defaultBranch string
	branches      map[string]string // name -> commit SHA
	tags          map[string]string // name -> commit SHA (lightweight tags)
	commits       map[string]*commit
	pipelines     []*pipeline
	statuses      []*Status
}

// Name is the project's last path component (GitLab's path, shown as
// its name for projects created from a path).
func (p *Project) Name() string { return p.Path[strings.LastIndex(p.Path, "/")+1:] }

func (p *Project) namespace() string { return p.Path[:strings.LastIndex(p.Path, "/")] }

func (p *Project) webURL() string { return p.s.URL + "/" + p.Path }

// Commit records files (path -> content; a nil content is an empty
// file) as the whole tree of a real git commit whose parent is branch's
// head, moves branch to it and returns its SHA, the one git computes for
// the same tree, author, dates and message. A file of the parent absent
// from files is deleted by the commit. A branch that does not exist yet
// starts from the default branch (the first branch committed to becomes
// the default branch, as on a first push).
func (p *Project) Commit(branch string, files map[string][]byte, message string) string {
	p.s.t.Helper()
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if !validRefName(branch) {
		p.s.t.Fatalf("gitlabfake: %q is not a valid branch name", branch)
	}
	parentSHA, ok := p.branches[branch]
	if !ok && p.defaultBranch != "" {
		parentSHA = p.branches[p.defaultBranch]
	}
	var parents []string
	parentTree := map[string][]byte{}
	if parentSHA != "" {
		parents = []string{parentSHA}
		parentTree = p.commits[parentSHA].files
	}
	c := &commit{parents: parents, files: map[string][]byte{}}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if !validPath(path) {
			p.s.t.Fatalf("gitlabfake: %q is not a valid file path", path)
		}
		content := bytes.Clone(files[path])
		if content == nil {
			content = []byte{}
		}
		c.files[path] = content
		old, existed := parentTree[path]
		switch {
		case !existed:
			c.added = append(c.added, path)
		case !bytes.Equal(old, content):
			c.modified = append(c.modified, path)
		}
	}
	for _, path := range slices.Sorted(maps.Keys(parentTree)) {
		if _, kept := c.files[path]; !kept {
			c.removed = append(c.removed, path)
		}
	}
	for path := range c.files { // a file and a directory cannot share a path
		for dir := path; strings.Contains(dir, "/"); {
			dir = dir[:strings.LastIndex(dir, "/")]
			if _, clash := c.files[dir]; clash {
				p.s.t.Fatalf("gitlabfake: %s is both a file and a directory", dir)
			}
		}
	}
	if !strings.HasSuffix(message, "\n") {
		message += "\n"
	}
	c.message = message
	c.when = epoch.Add(time.Duration(p.s.commitCount) * time.Minute)
	p.s.commitCount++
	c.tree = hex.EncodeToString(treeID(c.files))
	c.sha = commitID(c)
	p.commits[c.sha] = c
	p.branches[branch] = c.sha
	if p.defaultBranch == "" {
		p.defaultBranch = branch
	}
	return c.sha
}

// Tag creates (or moves) the lightweight tag name to the commit sha (a
// full SHA, a unique prefix, or a branch or tag name).
func (p *Project) Tag(name, sha string) {
	p.s.t.Helper()
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	if !validRefName(name) {
		p.s.t.Fatalf("gitlabfake: %q is not a valid tag name", name)
	}
	c := p.resolve(sha)
	if c == nil {
		p.s.t.Fatalf("gitlabfake: tag %s: no commit %s in %s", name, sha, p.Path)
	}
	p.tags[name] = c.sha
}

// Head is the SHA branch points to, "" when there is no such branch.
func (p *Project) Head(branch string) string {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.branches[branch]
}

// Files is the tree of a revision (SHA, prefix, branch or tag), nil when
// it does not resolve.
func (p *Project) Files(rev string) map[string][]byte {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	c := p.resolve(rev)
	if c == nil {
		return nil
	}
	return maps.Clone(c.files)
}

var hexRev = regexp.MustCompile(`^[0-9a-f]{4,40}$`)

// resolve finds the commit a revision names, in git's order: a full SHA,
// HEAD, a tag, a branch, then a unique abbreviated SHA. Callers hold s.mu.
func (p *Project) resolve(rev string) *commit {
	if c, ok := p.commits[rev]; ok {
		return c
	}
	if rev == "HEAD" && p.defaultBranch != "" {
		return p.commits[p.branches[p.defaultBranch]]
	}
	if sha, ok := p.tags[rev]; ok {
		return p.commits[sha]
	}
	if sha, ok := p.branches[rev]; ok {
		return p.commits[sha]
	}
	if !hexRev.MatchString(rev) {
		return nil
	}
	var found *commit
	for sha, c := range p.commits {
		if strings.HasPrefix(sha, rev) {
			if found != nil {
				return nil // ambiguous, as git says
			}
			found = c
		}
	}
	return found
}

// reachable is every commit reachable from sha, sha included.
func (p *Project) reachable(sha string) map[string]bool {
	seen := map[string]bool{}
	stack := []string{sha}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		c, ok := p.commits[s]
		if !ok || seen[s] {
			continue
		}
		seen[s] = true
		stack = append(stack, c.parents...)
	}
	return seen
}

// branchesContaining lists, sorted as git for-each-ref does, the
// branches whose history holds sha.
func (p *Project) branchesContaining(sha string) []string {
	var out []string
	for name, head := range p.branches {
		if p.reachable(head)[sha] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// between is the commits reachable from to and not from from (from may
// be "" or ZeroSHA), oldest first, as a push event lists them.
func (p *Project) between(from, to string) []*commit {
	exclude := map[string]bool{}
	if from != "" && from != ZeroSHA {
		exclude = p.reachable(from)
	}
	var out []*commit
	for sha := range p.reachable(to) {
		if !exclude[sha] {
			out = append(out, p.commits[sha])
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].when.Equal(out[j].when) {
			return out[i].when.Before(out[j].when)
		}
		return out[i].sha < out[j].sha
	})
	return out
}

func validRefName(name string) bool {
	if name == "" || name == "HEAD" || strings.HasPrefix(name, "-") || strings.HasSuffix(name, ".lock") ||
		strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") ||
		strings.Contains(name, "//") || strings.Contains(name, "@{") {
		return false
	}
	return !strings.ContainsAny(name, " ~^:?*[\\\x7f") && !strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 })
}

func validPath(path string) bool {
	if path == "" || strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") {
		return false
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." || seg == ".git" || strings.ContainsRune(seg, 0) {
			return false
		}
	}
	return true
}

// Git object ids: sha1("<type> <len>\x00<content>").
func objectID(kind string, content []byte) []byte {
	h := sha1.New() //nolint:gosec // git object ids are SHA-1
	fmt.Fprintf(h, "%s %d\x00", kind, len(content))
	h.Write(content)
	return h.Sum(nil)
}

// treeNode is one directory of a tree being hashed.
type treeNode struct {
	files map[string][]byte
	dirs  map[string]*treeNode
}

func buildTree(files map[string][]byte) *treeNode {
	root := &treeNode{files: map[string][]byte{}, dirs: map[string]*treeNode{}}
	for path, content := range files {
		n := root
		segs := strings.Split(path, "/")
		for _, d := range segs[:len(segs)-1] {
			sub, ok := n.dirs[d]
			if !ok {
				sub = &treeNode{files: map[string][]byte{}, dirs: map[string]*treeNode{}}
				n.dirs[d] = sub
			}
			n = sub
		}
		n.files[segs[len(segs)-1]] = content
	}
	return root
}

// entries lists a directory in git's tree order: by name, a directory
// sorting as if its name ended with "/".
func (n *treeNode) entries() []string {
	var names []string
	for name := range n.files {
		names = append(names, name)
	}
	for name := range n.dirs {
		names = append(names, name+"/")
	}
	sort.Strings(names)
	return names
}

func (n *treeNode) id() []byte {
	var buf bytes.Buffer
	for _, e := range n.entries() {
		if dir, ok := strings.CutSuffix(e, "/"); ok {
			buf.WriteString("40000 " + dir + "\x00")
			buf.Write(n.dirs[dir].id())
			continue
		}
		buf.WriteString("100644 " + e + "\x00")
		buf.Write(objectID("blob", n.files[e]))
	}
	return objectID("tree", buf.Bytes())
}

func treeID(files map[string][]byte) []byte { return buildTree(files).id() }

func signature(t time.Time) string {
	return AuthorName + " <" + AuthorEmail + "> " + strconv.FormatInt(t.Unix(), 10) + " +0000"
}

func commitID(c *commit) string {
	var b strings.Builder
	b.WriteString("tree " + c.tree + "\n")
	for _, p := range c.parents {
		b.WriteString("parent " + p + "\n")
	}
	b.WriteString("author " + signature(c.when) + "\n")
	b.WriteString("committer " + signature(c.when) + "\n\n")
	b.WriteString(c.message)
	return hex.EncodeToString(objectID("commit", []byte(b.String())))
}
