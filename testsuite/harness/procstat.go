package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times
// (100 on every architecture Go supports there).
const clockTicks = 100

// ProcCPU is the CPU time (user + system) pid and its descendants have
// used so far: its own, that of its children it has waited for, and that
// of its live descendants (a PostgreSQL server's backends, say).
func ProcCPU(pid int) (time.Duration, error) {
	children, err := childrenOf()
	if err != nil {
		return 0, err
	}
	var total time.Duration
	todo := []int{pid}
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		fields, err := statFields(p)
		if err != nil {
			if p == pid {
				return 0, err
			}
			continue // a backend that ended meanwhile
		}
		// Fields after the command: state is [0]; utime [11], stime [12],
		// cutime [13], cstime [14].
		for _, i := range []int{11, 12, 13, 14} {
			n, err := strconv.ParseInt(fields[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/stat field %d: %w", p, i+3, err)
			}
			total += time.Duration(n) * time.Second / clockTicks
		}
		todo = append(todo, children[p]...)
	}
	return total, nil
}

// ProcMemory is pid's resident set size now and its peak (VmRSS, VmHWM),
// in bytes.
func ProcMemory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak, nil
}

// FindProcess is the pid of the one process whose command line holds
// every part (e.g. "start-dev" and "--port 7233"); it fails when none or
// several match.
func FindProcess(parts ...string) (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		cmd := string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))
		all := true
		for _, p := range parts {
			all = all && strings.Contains(cmd, p)
		}
		if all {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%d processes match %q: %v", len(found), parts, found)
	}
	return found[0], nil
}

// statFields is /proc/<pid>/stat after the command (which may hold
// spaces and parentheses).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	return fields, nil
}

// childrenOf maps every live process to its children.
func childrenOf() (map[int][]int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	out := make(map[int][]int)
	for _, f := range dirs {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err != nil {
			continue
		}
		fields, err := statFields(pid)
		if err != nil {
			continue
		}
		ppid, err := strconv.Atoi(fields[1])
		if err == nil {
			out[ppid] = append(out[ppid], pid)
		}
	}
	return out, nil
}
