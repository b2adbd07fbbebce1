package backup

import (
	"fmt"
	"regexp"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Failure types of the activities; all are non-retryable.
const (
	// ErrInvalidInput: a tenant, volume or backup id that cannot name a
	// directory of the backup location.
	ErrInvalidInput = "InvalidBackupInput"
	// ErrUnsupportedFileType: a volume holds a socket, FIFO or device,
	// which a tar of the volume cannot faithfully carry.
	ErrUnsupportedFileType = "UnsupportedFileType"
	// ErrVerificationFailed: the backup's manifest or an archive does not
	// match what was written, or a restore does not reproduce it.
	ErrVerificationFailed = "BackupVerificationFailed"
	// ErrBackupNotFound: there is no complete backup under the id (no
	// manifest.json).
	ErrBackupNotFound = "BackupNotFound"
)

// ManifestVersion is the layout version written in every manifest.json.
const ManifestVersion = 1

// Entry types.
const (
	TypeDir     = "dir"
	TypeFile    = "file"
	TypeSymlink = "symlink"
)

// Entry is one file, directory or symlink of a volume, as backed up.
type Entry struct {
	// Path is relative to the volume's root, slash-separated; the root
	// itself is ".".
	Path string `json:"path"`
	Type string `json:"type"`
	// Mode holds the permission bits plus setuid (04000), setgid (02000)
	// and sticky (01000), as chmod takes them.
	Mode    uint32    `json:"mode"`
	UID     int       `json:"uid"`
	GID     int       `json:"gid"`
	Size    int64     `json:"size,omitempty"`
	SHA256  string    `json:"sha256,omitempty"`
	Target  string    `json:"target,omitempty"`
	ModTime time.Time `json:"modTime"`
}

// VolumeArchive describes one volume's archive in the manifest; it is also
// the content of <volume>.entries.json, which marks the archive complete.
type VolumeArchive struct {
	Volume        string  `json:"volume"`
	Archive       string  `json:"archive"`
	ArchiveBytes  int64   `json:"archiveBytes"`
	ArchiveSHA256 string  `json:"archiveSha256"`
	DataBytes     int64   `json:"dataBytes"`
	Files         int     `json:"files"`
	Entries       []Entry `json:"entries,omitempty"`
}

// Manifest is manifest.json: written last, its presence makes a backup
// complete, and its SHA-256 is the backup's checksum.
type Manifest struct {
	Version   int             `json:"version"`
	Tenant    string          `json:"tenant"`
	ID        string          `json:"id"`
	CreatedAt time.Time       `json:"createdAt"`
	Volumes   []VolumeArchive `json:"volumes"`
	// Dumps are the services backed up by their own dump tool instead of
	// an archive of their volumes.
	Dumps []DumpArchive `json:"dumps,omitempty"`
}

// BackupInput asks for the tenant's volumes to be archived under ID.
type BackupInput struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner,omitempty"`
	// Runtime is the tenant's runtime; one whose volumes are kept in
	// place (see InPlace) is not archived.
	Runtime string   `json:"runtime,omitempty"`
	ID      string   `json:"id"`
	Volumes []string `json:"volumes"`
	// Dumps names the services whose dumps DumpServices took under ID;
	// they are listed in the manifest with the archives.
	Dumps []string `json:"dumps,omitempty"`
}

// BackupRef names a complete backup. ManifestSHA256 (from the Backup that
// BackupVolumes returned) pins its content: empty only for RemoveBackup.
type BackupRef struct {
	Tenant         string `json:"tenant"`
	Owner          string `json:"owner,omitempty"`
	Runtime        string `json:"runtime,omitempty"`
	ID             string `json:"id"`
	ManifestSHA256 string `json:"manifestSha256,omitempty"`
	// Dumps are the services of the backup's dumps, as rendered for the
	// tenant: verification starts a scratch instance of each, and a
	// restore loads each dump with the service's restore command.
	Dumps []spec.Service `json:"dumps,omitempty"`
	// Kept are the volumes of an in-place backup, as BackupVolumes
	// reported them (ManifestSHA256 is their checksum).
	Kept []KeptVolume `json:"kept,omitempty"`
}

// VolumeSummary is one volume's archive without its entries.
type VolumeSummary struct {
	Volume        string `json:"volume"`
	Archive       string `json:"archive"`
	ArchiveBytes  int64  `json:"archiveBytes"`
	ArchiveSHA256 string `json:"archiveSha256"`
	DataBytes     int64  `json:"dataBytes"`
	Files         int    `json:"files"`
}

// Backup is the summary that travels through workflow history: never the
// entries, which can be thousands.
type Backup struct {
	ID string `json:"id"`
	// Kind is empty for archives in the backup location, KindInPlace for
	// volumes the runtime's storage keeps (then Kept lists them and Note
	// says what that means).
	Kind string       `json:"kind,omitempty"`
	Note string       `json:"note,omitempty"`
	Kept []KeptVolume `json:"kept,omitempty"`
	// Location is the directory of this backup.
	Location string `json:"location"`
	// ManifestSHA256 is the SHA-256 of manifest.json: the backup's checksum.
	ManifestSHA256 string          `json:"manifestSha256"`
	ArchiveBytes   int64           `json:"archiveBytes"`
	DataBytes      int64           `json:"dataBytes"`
	Files          int             `json:"files"`
	Volumes        []VolumeSummary `json:"volumes"`
	Dumps          []DumpArchive   `json:"dumps,omitempty"`
	CreatedAt      time.Time       `json:"createdAt"`
}

// Verification is what a verification or a restore checked.
type Verification struct {
	Files     int           `json:"files"`
	DataBytes int64         `json:"dataBytes"`
	Took      time.Duration `json:"took"`
}

// summary is the Backup of a manifest whose bytes hash to sum.
func (m Manifest) summary(location, sum string) Backup {
	b := Backup{ID: m.ID, Location: location, ManifestSHA256: sum, CreatedAt: m.CreatedAt,
		Volumes: make([]VolumeSummary, 0, len(m.Volumes)), Dumps: m.Dumps}
	for _, d := range m.Dumps {
		b.ArchiveBytes += d.Bytes
		b.DataBytes += d.Bytes
	}
	for _, v := range m.Volumes {
		b.ArchiveBytes += v.ArchiveBytes
		b.DataBytes += v.DataBytes
		b.Files += v.Files
		b.Volumes = append(b.Volumes, VolumeSummary{Volume: v.Volume, Archive: v.Archive,
			ArchiveBytes: v.ArchiveBytes, ArchiveSHA256: v.ArchiveSHA256, DataBytes: v.DataBytes, Files: v.Files})
	}
	return b
}

var (
	idPattern     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// maxIDLen keeps <Dir>/<tenant>/<id>/<volume>.entries.json.tmp far from
// NAME_MAX.
const maxIDLen = 128

func invalid(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrInvalidInput, nil)
}

// validName checks what becomes a path component of the backup location:
// a tenant and a volume are DNS labels, an id also allows dots.
func validName(tenant, id string) error {
	if !spec.IsDNSLabel(tenant, 63) {
		return invalid("tenant %q is not a DNS label", tenant)
	}
	if len(id) > maxIDLen || !idPattern.MatchString(id) {
		return invalid("backup id %q must match %s and have at most %d characters", id, idPattern, maxIDLen)
	}
	return nil
}

func (in BackupInput) validate() error {
	if err := validName(in.Tenant, in.ID); err != nil {
		return err
	}
	seen := make(map[string]bool, len(in.Volumes))
	for _, v := range in.Volumes {
		if !spec.IsDNSLabel(v, 63) {
			return invalid("volume %q is not a DNS label", v)
		}
		if seen[v] {
			return invalid("volume %q is listed twice", v)
		}
		seen[v] = true
	}
	return nil
}

// validate checks the ref; the manifest checksum is optional only for
// RemoveBackup.
func (r BackupRef) validate(needSum bool) error {
	if err := validName(r.Tenant, r.ID); err != nil {
		return err
	}
	if needSum && !sha256Pattern.MatchString(r.ManifestSHA256) {
		return invalid("backup %s: manifest checksum %q is not a lower-case hex SHA-256", r.ID, r.ManifestSHA256)
	}
	return nil
}
