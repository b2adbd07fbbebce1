//go:build !linux

package volsync

import "syscall"

// syncFS flushes every file system to disk (no syncfs here).
func syncFS(string) error {
	syscall.Sync()
	return nil
}
