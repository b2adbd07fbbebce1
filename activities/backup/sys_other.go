//go:build !unix

package backup

import (
	"io/fs"
	"os"
)

// owner is unknown where files have no numeric owner.
func owner(fs.FileInfo) (uid, gid int) { return -1, -1 }

// tryLock does not lock where flock does not exist: one worker per backup
// location only.
func tryLock(*os.File) (bool, error) { return true, nil }
