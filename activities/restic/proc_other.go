//go:build !linux

package restic

import "syscall"

// sysProcAttr sets nothing where the kernel has no parent-death signal: a
// killed worker's restic runs to its end there, and its snapshot, without
// a manifest, is forgotten by the retry.
func sysProcAttr() *syscall.SysProcAttr { return nil }
