package backup

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// DumpHost runs a database's own dump and restore tools (the template's
// backup commands) in the runtime: in the tenant's running service, and in
// a throw-away instance on scratch volumes that verifies a dump.
type DumpHost interface {
	ExecInService(ctx context.Context, tenant, owner string, svc spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error
	StartScratchInstance(ctx context.Context, tenant string, svc spec.Service) error
	ExecInScratchInstance(ctx context.Context, tenant string, svc spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error
	RemoveScratchInstance(ctx context.Context, tenant string, svc spec.Service) error
}

// DumpArchive is one service's dump in the manifest, and the content of
// <service>.dump.json, which marks the dump complete.
type DumpArchive struct {
	Service string `json:"service"`
	File    string `json:"file"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
}

// DumpInput asks for the dumps of the tenant's services that declare one
// (Service.Backup), under backup ID. The services carry their rendered
// environment (a database password, say): the input travels encrypted.
type DumpInput struct {
	Tenant   string         `json:"tenant"`
	Owner    string         `json:"owner,omitempty"`
	Runtime  string         `json:"runtime,omitempty"`
	ID       string         `json:"id"`
	Services []spec.Service `json:"services"`
}

func dumpFile(svc string) string { return svc + ".dump" }

func (in DumpInput) validate() error {
	if err := validName(in.Tenant, in.ID); err != nil {
		return err
	}
	for _, s := range in.Services {
		if !spec.IsDNSLabel(s.Name, 63) || s.Backup == nil || len(s.Backup.Dump) == 0 || len(s.Backup.Restore) == 0 {
			return invalid("service %q has no dump and restore commands", s.Name)
		}
	}
	return nil
}

func (a *Activities) dumpHost() (DumpHost, error) {
	h, ok := a.Host.(DumpHost)
	if !ok {
		return nil, temporal.NewNonRetryableApplicationError("this runtime cannot run a service's dump or restore commands", ErrInvalidInput, nil)
	}
	return h, nil
}

// DumpServices takes each service's consistent dump with its own tool,
// while it runs, into <service>.dump (through a .partial file, fsynced
// before it is renamed). A dump completed by an earlier attempt is kept;
// BackupVolumes then lists the dumps in the manifest.
func (a *Activities) DumpServices(ctx context.Context, in DumpInput) error {
	if a.inPlace(in.Runtime) != nil {
		// The database's files stay on its kept volume, written out by
		// its clean shutdown: there is nothing to dump them to.
		return nil
	}
	if err := in.validate(); err != nil {
		return err
	}
	host, err := a.dumpHost()
	if err != nil {
		return err
	}
	dir := a.location(in.Tenant, in.ID)
	log := a.log().With("tenant", in.Tenant, "backup", in.ID)
	if err := a.makeDir(dir); err != nil {
		return fmt.Errorf("backup %s: %w", in.ID, err)
	}
	p, stop := a.track(ctx, "dump "+in.ID)
	defer stop()
	unlock, err := a.lockBackup(ctx, dir, p)
	if err != nil {
		return err
	}
	defer unlock()
	for _, svc := range in.Services {
		if da, ok := reusableDump(dir, svc.Name); ok {
			log.Info("dump taken by an earlier attempt: reused", "service", svc.Name, "bytes", da.Bytes)
			continue
		}
		p.stage("dump of "+svc.Name, 0)
		start := time.Now()
		partial := filepath.Join(dir, dumpFile(svc.Name)+".partial")
		f, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("dump of %s: %w", svc.Name, err)
		}
		h := sha256.New()
		cw := &countWriter{w: io.MultiWriter(f, h), p: p}
		err = host.ExecInService(ctx, in.Tenant, in.Owner, svc, svc.Backup.Dump, nil, cw)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return passOn(err, "dump of %s", svc.Name)
		}
		if err := os.Rename(partial, filepath.Join(dir, dumpFile(svc.Name))); err != nil {
			return fmt.Errorf("dump of %s: %w", svc.Name, err)
		}
		da := DumpArchive{Service: svc.Name, File: dumpFile(svc.Name), Bytes: cw.n, SHA256: hexSum(h)}
		data, _ := json.Marshal(da)
		if err := writeAtomic(dir, dumpFile(svc.Name)+".json", data); err != nil {
			return fmt.Errorf("dump of %s: %w", svc.Name, err)
		}
		log.Info("dump taken", "service", svc.Name, "bytes", da.Bytes, "sha256", da.SHA256, "took", time.Since(start))
	}
	return nil
}

// reusableDump returns a dump an earlier attempt completed.
func reusableDump(dir, svc string) (DumpArchive, bool) {
	data, err := os.ReadFile(filepath.Join(dir, dumpFile(svc)+".json"))
	if err != nil {
		return DumpArchive{}, false
	}
	var da DumpArchive
	if json.Unmarshal(data, &da) != nil || da.Service != svc || da.File != dumpFile(svc) {
		return DumpArchive{}, false
	}
	fi, err := os.Stat(filepath.Join(dir, da.File))
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != da.Bytes {
		return DumpArchive{}, false
	}
	return da, true
}

// dumpsOf returns the complete dumps BackupVolumes lists in the manifest.
func dumpsOf(dir string, services []string) ([]DumpArchive, error) {
	var out []DumpArchive
	for _, s := range services {
		if !spec.IsDNSLabel(s, 63) {
			return nil, invalid("dump service %q is not a DNS label", s)
		}
		da, ok := reusableDump(dir, s)
		if !ok {
			return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the dump of %s is missing: DumpServices must run first", s), ErrInvalidInput, nil)
		}
		out = append(out, da)
	}
	return out, nil
}

// openDumps checks every dump end to end against the manifest (see
// openChecked) and returns them open, in order: a restore is never fed a
// dump that changed on the storage, and never starts before all are good.
func (a *Activities) openDumps(ctx context.Context, dir string, dumps []DumpArchive, p *progress) ([]io.ReadCloser, error) {
	return openAll(len(dumps), func(i int) (io.ReadCloser, error) {
		da := dumps[i]
		return a.openChecked(ctx, dir, da.File, da.Bytes, da.SHA256, "dump of "+da.Service, p)
	})
}

// feed streams a checked dump to cmd through a tripwire (run is the
// host's exec in the live service or the scratch instance).
func feed(dump io.Reader, da DumpArchive, p *progress, run func(stdin io.Reader) error) error {
	p.stage("restore of the dump of "+da.Service, da.Bytes)
	tw := newTripwire(dump, da.Bytes, da.SHA256, "dump of "+da.Service, p)
	return tw.failed(run(tw))
}

// verifyDump restores the dump into a scratch instance of the service and
// dumps that instance again: the two dumps must be identical, which proves
// the dump restores to the same data.
func (a *Activities) verifyDump(ctx context.Context, host DumpHost, tenant, dir string, da DumpArchive, svc spec.Service, p *progress) error {
	dumps, err := a.openDumps(ctx, dir, []DumpArchive{da}, p)
	if err != nil {
		return err
	}
	defer closeAll(dumps)
	p.stage("scratch instance of "+svc.Name, 0)
	if err := host.StartScratchInstance(ctx, tenant, svc); err != nil {
		return passOn(err, "dump of %s: scratch instance", svc.Name)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := host.RemoveScratchInstance(rctx, tenant, svc); err != nil {
			a.log().Warn("scratch instance left behind", "tenant", tenant, "service", svc.Name, "err", err)
		}
	}()
	err = feed(dumps[0], da, p, func(stdin io.Reader) error {
		return host.ExecInScratchInstance(ctx, tenant, svc, svc.Backup.Restore, stdin, io.Discard)
	})
	if err != nil {
		return verificationFailed(err, "dump of %s does not restore", svc.Name)
	}
	p.stage("dump of the scratch instance of "+svc.Name, da.Bytes)
	h := sha256.New()
	if err := host.ExecInScratchInstance(ctx, tenant, svc, svc.Backup.Dump, nil, &countWriter{w: h, p: p}); err != nil {
		return passOn(err, "dump of %s: dump of the scratch instance", svc.Name)
	}
	if got := hexSum(h); got != da.SHA256 {
		msg := fmt.Sprintf("dump of %s: restored into a scratch instance it dumps as sha256 %s, not %s", svc.Name, got, da.SHA256)
		return temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
	}
	return nil
}

// verificationFailed turns a restore command's refusal into a failed
// verification; other errors pass on as they are.
func verificationFailed(err error, format string, args ...any) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == "ServiceCommandFailed" {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...)+": "+appErr.Message(), ErrVerificationFailed, nil)
	}
	return passOn(err, format, args...)
}

// LoadDumps feeds each dump of the backup to its service's restore tool,
// in the tenant's running (restored) service. The restore tool replaces
// the service's data, so a retry loads it again. Every dump is checked
// before the first is loaded, and the backup's lock keeps a retry from
// loading while an earlier attempt still does.
func (a *Activities) LoadDumps(ctx context.Context, ref BackupRef) error {
	if a.inPlace(ref.Runtime) != nil {
		return nil // the data never left the volume
	}
	host, err := a.dumpHost()
	if err != nil {
		return err
	}
	b, err := a.hold(ctx, ref, "load dumps")
	if err != nil {
		return err
	}
	defer b.release()
	specs, err := dumpSpecs(b.m, ref)
	if err != nil {
		return err
	}
	dumps, err := a.openDumps(ctx, b.dir, b.m.Dumps, b.p)
	if err != nil {
		return err
	}
	defer closeAll(dumps)
	for i, da := range b.m.Dumps {
		svc := specs[i]
		start := time.Now()
		err := feed(dumps[i], da, b.p, func(stdin io.Reader) error {
			return host.ExecInService(ctx, ref.Tenant, ref.Owner, svc, svc.Backup.Restore, stdin, io.Discard)
		})
		if err != nil {
			return passOn(err, "load the dump of %s", da.Service)
		}
		a.log().Info("dump loaded", "tenant", ref.Tenant, "backup", ref.ID, "service", da.Service, "bytes", da.Bytes, "took", time.Since(start))
	}
	return nil
}

// dumpSpecs are the services (with their restore commands) of the
// manifest's dumps, in its order.
func dumpSpecs(m Manifest, ref BackupRef) ([]spec.Service, error) {
	out := make([]spec.Service, 0, len(m.Dumps))
	for _, da := range m.Dumps {
		i := slices.IndexFunc(ref.Dumps, func(s spec.Service) bool { return s.Name == da.Service })
		if i < 0 || ref.Dumps[i].Backup == nil || len(ref.Dumps[i].Backup.Restore) == 0 {
			return nil, invalid("the backup holds a dump of %s, but the restore names no such service with a restore command", da.Service)
		}
		out = append(out, ref.Dumps[i])
	}
	return out, nil
}

// countWriter counts what a dump writes, for the progress heartbeat.
type countWriter struct {
	w io.Writer
	p *progress
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.p.add(n)
	return n, err
}
