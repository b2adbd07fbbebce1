package gitlabfake

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// archive serves GET /projects/:id/repository/archive[.format]: what
// GitLab's API hands to Workhorse, which streams `git archive` of the
// commit. The top directory (and file name) is GitLab's archive prefix,
// "<project path>-<sha param>-<commit SHA>" (API archives always append
// the SHA), followed by "-<path>" for a subfolder.
func (s *Server) archive(q *request, p *Project, format string) {
	var kind string
	switch format {
	case "", "tar.gz", "tgz", "gz":
		kind = "tar.gz"
	case "tar":
		kind = "tar"
	case "zip":
		kind = "zip"
	case "tar.bz2", "tbz", "tbz2", "tb2", "bz2":
		writeJSON(q.w, http.StatusNotImplemented, map[string]any{"message": "gitlabfake: bzip2 archives are not implemented"})
		return
	default: // outside GitLab's archive_formats_regex: no such route
		notFoundRoute(q.w)
		return
	}
	if format == "" {
		format = "tar.gz"
	}
	params := q.r.URL.Query()
	s.mu.Lock()
	ref := params.Get("sha")
	if ref == "" {
		ref = p.defaultBranch
	}
	c := p.resolve(ref)
	gate := s.archiveGate
	s.mu.Unlock()
	if c == nil {
		notFound(q.w, "File")
		return
	}
	prefix := p.Name() + "-" + strings.ReplaceAll(ref, "/", "-") + "-" + c.sha
	files := c.files // never modified once committed
	if sub := strings.Trim(params.Get("path"), "/"); sub != "" {
		prefix += "-" + strings.ReplaceAll(sub, "/", "-")
		files = map[string][]byte{}
		for path, content := range c.files {
			if strings.HasPrefix(path, sub+"/") {
				files[path] = content
			}
		}
	}
	h := q.w.Header()
	h.Set("Content-Disposition", `attachment; filename="`+prefix+"."+format+`"`)
	h.Set("Content-Transfer-Encoding", "binary")
	if kind == "zip" {
		h.Set("Content-Type", "application/zip")
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	q.w.WriteHeader(http.StatusOK)

	// pause lets a test hold the stream once it has started.
	pause := func(flush func() error) bool {
		if gate == nil {
			return true
		}
		_ = flush()
		q.w.Flush()
		select {
		case <-gate:
			return true
		case <-q.r.Context().Done():
			return false
		}
	}
	switch kind {
	case "zip":
		writeZip(q.w, prefix, c, files, pause)
	case "tar":
		writeTar(q.w, prefix, c, files, pause)
	default:
		gz := gzip.NewWriter(q.w) // like `gzip -cn`: no name, no time
		if writeTar(gz, prefix, c, files, func(f func() error) bool {
			return pause(func() error { _ = f(); return gz.Flush() })
		}) {
			_ = gz.Close()
		}
	}
}

// git archive's modes: 0666/0777 less its default umask 002.
const (
	fileMode = 0o664
	dirMode  = 0o775
)

// writeTar writes what `git archive --format=tar --prefix=<prefix>/`
// does: a pax global header holding the commit id, then the top
// directory and the tree in git's order, dated with the commit time.
func writeTar(w io.Writer, prefix string, c *commit, files map[string][]byte, pause func(flush func() error) bool) bool {
	tw := tar.NewWriter(w)
	hdr := func(name string, typ byte, mode int64, size int64) *tar.Header {
		return &tar.Header{
			Name: name, Typeflag: typ, Mode: mode, Size: size, ModTime: c.when,
			Uname: "root", Gname: "root",
		}
	}
	global := &tar.Header{
		Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader,
		PAXRecords: map[string]string{"comment": c.sha}, Format: tar.FormatPAX,
	}
	if tw.WriteHeader(global) != nil || tw.WriteHeader(hdr(prefix+"/", tar.TypeDir, dirMode, 0)) != nil {
		return false
	}
	if !pause(tw.Flush) {
		return false
	}
	var walk func(n *treeNode, dir string) bool
	walk = func(n *treeNode, dir string) bool {
		for _, e := range n.entries() {
			if sub, ok := strings.CutSuffix(e, "/"); ok {
				if tw.WriteHeader(hdr(dir+sub+"/", tar.TypeDir, dirMode, 0)) != nil || !walk(n.dirs[sub], dir+sub+"/") {
					return false
				}
				continue
			}
			content := n.files[e]
			if tw.WriteHeader(hdr(dir+e, tar.TypeReg, fileMode, int64(len(content)))) != nil {
				return false
			}
			if _, err := tw.Write(content); err != nil {
				return false
			}
		}
		return true
	}
	return walk(buildTree(files), prefix+"/") && tw.Close() == nil
}

// writeZip writes what `git archive --format=zip` does: the commit id as
// the archive comment, directories and files under the prefix.
func writeZip(w io.Writer, prefix string, c *commit, files map[string][]byte, pause func(flush func() error) bool) {
	zw := zip.NewWriter(w)
	_ = zw.SetComment(c.sha)
	entry := func(name string, mode uint32) (io.Writer, error) {
		fh := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: c.when.In(time.UTC)}
		if strings.HasSuffix(name, "/") {
			fh.Method = zip.Store
		}
		if strings.HasSuffix(name, "/") {
			fh.SetMode(fs.ModeDir | fs.FileMode(mode))
		} else {
			fh.SetMode(fs.FileMode(mode))
		}
		return zw.CreateHeader(fh)
	}
	if _, err := entry(prefix+"/", dirMode); err != nil || !pause(zw.Flush) {
		return
	}
	var walk func(n *treeNode, dir string) bool
	walk = func(n *treeNode, dir string) bool {
		for _, e := range n.entries() {
			if sub, ok := strings.CutSuffix(e, "/"); ok {
				if _, err := entry(dir+sub+"/", dirMode); err != nil || !walk(n.dirs[sub], dir+sub+"/") {
					return false
				}
				continue
			}
			fw, err := entry(dir+e, fileMode)
			if err != nil {
				return false
			}
			if _, err := fw.Write(n.files[e]); err != nil {
				return false
			}
		}
		return true
	}
	if walk(buildTree(files), prefix+"/") {
		_ = zw.Close()
	}
}
