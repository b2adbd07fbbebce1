package harness

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"
)

// Postgres is a throwaway PostgreSQL server (Debian's) on a loopback
// port, its data in a temp dir, run as the postgres user; Role and
// Password log in over TCP and may create databases.
type Postgres struct {
	Addr     string
	Port     int
	Role     string
	Password string
	dir      string
	bin      string
	t        testing.TB
	proc     *Process
}

// StartPostgres initialises and starts a PostgreSQL server for the test,
// and stops it when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	SkipShort(t, "postgres")
	bin := postgresBin()
	if bin == "" {
		Unavailable(t, "PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)")
	}
	if _, err := user.Lookup("postgres"); err != nil {
		Unavailable(t, "no postgres user (apt-get install postgresql): %v", err)
	}
	setpriv := RequireBinary(t, "setpriv", "util-linux")
	dir, err := os.MkdirTemp("", "tfpg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &Postgres{Port: FreePort(t), Role: "tenantflow", Password: "tenantflow-test", dir: dir, bin: bin, t: t}
	p.Addr = Addr(p.Port)
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(setpriv, append([]string{"--reuid=postgres", "--regid=postgres", "--init-groups", filepath.Join(bin, name)}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v %s", dir, err, out)
	}
	run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
	proc := NewProcess(t, dir, nil, setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups",
		filepath.Join(bin, "postgres"), "-D", filepath.Join(dir, "data"), "-p", strconv.Itoa(p.Port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	proc.Start()
	p.proc = proc
	// The port accepts connections while the server still starts up
	// ("the database system is starting up"): ask pg_isready.
	WaitFor(t, "postgres", 30*time.Second, func() error {
		return exec.Command(filepath.Join(bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port)).Run()
	})
	p.SQL("postgres", fmt.Sprintf("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'", p.Role, p.Password))
	return p
}

// PID is the postmaster's process id (setpriv execs it): ProcCPU of it
// counts its backends too.
func (p *Postgres) PID() int { return p.proc.Pid() }

// SQL runs statements as the superuser in database db.
func (p *Postgres) SQL(db string, statements ...string) {
	p.t.Helper()
	args := []string{"--reuid=postgres", "--regid=postgres", "--init-groups", filepath.Join(p.bin, "psql"),
		"-h", p.dir, "-p", strconv.Itoa(p.Port), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt"}
	for _, s := range statements {
		args = append(args, "-c", s)
	}
	cmd := exec.Command("setpriv", args...)
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("psql %v: %v\n%s", statements, err, out)
	}
}

// postgresBin is the newest installed server's bin directory.
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(dirs) == 0 {
		return ""
	}
	sort.Strings(dirs)
	return filepath.Dir(dirs[len(dirs)-1])
}
