package backup

import "syscall"

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writeback of the
// range's dirty pages without waiting for it.
const syncFileRangeWrite = 2

// startWriteback asks the kernel to begin writing [off, off+n) of the file
// to disk now, so the archive's final fsync finds most of it already
// written instead of flushing the whole archive at once. Advisory: errors
// are ignored (fsync still decides).
func startWriteback(fd uintptr, off, n int64) {
	_ = syscall.SyncFileRange(int(fd), off, n, syncFileRangeWrite)
}
