//go:build linux

package restic

import "syscall"

// sysProcAttr makes the kernel kill restic (SIGKILL) when the worker
// dies: a killed worker must not leave a restic behind that goes on
// writing a snapshot the retry does not know about. (Pdeathsig follows
// the thread that started the child; Go ends a thread only when a
// goroutine locked to it exits, which this package never does.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
