// Package docker runs tenant environments on a Docker Engine: one bridge
// network, named volumes and one container per service for each tenant, all
// found again by deterministic names and tenantflow.* labels so that every
// operation is idempotent.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// Labels put on everything Tenantflow creates, so ops can find a tenant's
// objects with one filter (docker ps --filter label=tenantflow.tenant=acme).
const (
	LabelManaged = "tenantflow.managed"
	LabelTenant  = "tenantflow.tenant"
	LabelService = "tenantflow.service"
	LabelVolume  = "tenantflow.volume"
	LabelSpec    = "tenantflow.spec"  // hash of the rendered service spec
	LabelOwner   = "tenantflow.owner" // the provisioning (workflow run) that made it
	// LabelGeneration tells a service's instances apart during a release
	// cut-over; only generations above 0 carry it, so containers made
	// before releases existed read as generation 0.
	LabelGeneration = "tenantflow.generation"
)

// Config is the Docker driver's configuration.
type Config struct {
	// Host is the engine address (unix:///var/run/docker.sock, tcp://…);
	// empty means DOCKER_HOST or the default socket.
	Host string
	// PublishIP is the host address the tenant's public port is published
	// on; the proxy (or the user, before routing exists) connects there.
	PublishIP string
	// PollInterval is how often health is checked while waiting.
	PollInterval time.Duration
	// ProbeConcurrency bounds the health probes (an inspect, and an exec
	// or an HTTP GET) the worker runs at once on the engine
	// (DefaultProbeConcurrency when 0): a burst of tenants starting
	// together then queues for the engine instead of swamping it, so each
	// probe still answers within its timeout.
	ProbeConcurrency int
	// StartConcurrency bounds the containers the worker creates and
	// starts at once on the engine (DefaultStartConcurrency when 0): a
	// batch of tenants requested together queues here.
	StartConcurrency int
	// StartingTenants bounds the tenants starting at once on the engine,
	// from their admission to the end of their health wait
	// (DefaultStartingTenants when 0): the others queue (see admission).
	StartingTenants int
	// SubnetPool is the IPv4 prefix tenant networks get their subnets
	// from (DefaultSubnetPool when empty), SubnetBits the prefix length
	// of each (DefaultSubnetBits when 0). The number of subnets is the
	// number of tenants the host can hold.
	SubnetPool string
	SubnetBits int
	// Ship, when its Address is set, sends every tenant container's
	// output to a central syslog receiver as well (see ship.go).
	Ship Shipping
}

// Settings of the Docker driver, named in start-up errors.
const (
	EnvSubnetPool = "TENANTFLOW_DOCKER_SUBNET_POOL"
	EnvSubnetBits = "TENANTFLOW_DOCKER_SUBNET_BITS"
	// EnvProbeConcurrency names Config.ProbeConcurrency.
	EnvProbeConcurrency = "TENANTFLOW_DOCKER_PROBE_CONCURRENCY"
	// EnvStartConcurrency names Config.StartConcurrency.
	EnvStartConcurrency = "TENANTFLOW_DOCKER_START_CONCURRENCY"
	// EnvStartingTenants names Config.StartingTenants.
	EnvStartingTenants = "TENANTFLOW_DOCKER_STARTING_TENANTS"
)

// DefaultStartingTenants is Config.StartingTenants's default: a tenant
// of the default templates starts in a few seconds on an idle 2-core
// host, so eight at a time start a batch about as fast as the engine can
// while keeping its answers to health probes within their timeouts.
const DefaultStartingTenants = 8

// DefaultStartConcurrency is Config.StartConcurrency's default: a
// container start costs the engine a mount, a network namespace and a port
// proxy; four at a time keep it answering the health probes of those
// already started.
const DefaultStartConcurrency = 4

// DefaultProbeConcurrency is Config.ProbeConcurrency's default: an exec
// costs the engine and containerd tens of milliseconds of CPU; eight at a
// time keep a 2-core host answering while hundreds of services start.
const DefaultProbeConcurrency = 8

// probeBackoff stretches the pace of a service's start probes after each
// failed one, up to maxProbePace: a service that takes long to start is
// probed less often, leaving the engine to those about to be ready.
const (
	probeBackoff = 1.5
	maxProbePace = 2 * time.Second
)

// Validate checks the settings that need no engine, naming the bad one.
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

// check checks the settings and returns the tenant subnet pool.
func (c Config) check() (subnetPool, error) {
	if c.ProbeConcurrency < 0 {
		return subnetPool{}, fmt.Errorf("%s %d must be positive (0: %d)", EnvProbeConcurrency, c.ProbeConcurrency, DefaultProbeConcurrency)
	}
	if c.StartConcurrency < 0 {
		return subnetPool{}, fmt.Errorf("%s %d must be positive (0: %d)", EnvStartConcurrency, c.StartConcurrency, DefaultStartConcurrency)
	}
	if c.StartingTenants < 0 {
		return subnetPool{}, fmt.Errorf("%s %d must be positive (0: %d)", EnvStartingTenants, c.StartingTenants, DefaultStartingTenants)
	}
	pool, bits := c.SubnetPool, c.SubnetBits
	if pool == "" {
		pool = DefaultSubnetPool
	}
	if bits == 0 {
		bits = DefaultSubnetBits
	}
	sp, err := parseSubnetPool(pool, bits)
	if err != nil {
		return sp, fmt.Errorf("%s/%s: %w", EnvSubnetPool, EnvSubnetBits, err)
	}
	return sp, c.Ship.Validate()
}

// Driver implements runtimes.Driver on a Docker Engine.
type Driver struct {
	cli     *client.Client
	cfg     Config
	subnets subnetPool
	probes  chan struct{} // probe slots (Config.ProbeConcurrency)
	starts  chan struct{} // container start slots (Config.StartConcurrency)
	admit   *admission    // tenants starting, and those queued (Config.StartingTenants)
	http    *http.Client
	log     *slog.Logger

	authMu sync.RWMutex
	auths  map[string]registry.AuthConfig // by registry host, for EnsureImage

	netMu      sync.Mutex
	netCreates map[string]chan struct{} // network creates running, by name (closed when done)
}

// New connects to the engine and checks it answers, so a wrong address is a
// start-up error naming the setting rather than a failing activity later.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Driver, error) {
	subnets, err := cfg.check()
	if err != nil {
		return nil, err
	}
	if cfg.ProbeConcurrency == 0 {
		cfg.ProbeConcurrency = DefaultProbeConcurrency
	}
	if cfg.StartConcurrency == 0 {
		cfg.StartConcurrency = DefaultStartConcurrency
	}
	if cfg.StartingTenants == 0 {
		cfg.StartingTenants = DefaultStartingTenants
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker host %q: %w", cfg.Host, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("docker host %q does not answer: %w", cli.DaemonHost(), err)
	}
	if cfg.PublishIP == "" {
		cfg.PublishIP = "127.0.0.1"
	}
	if net.ParseIP(cfg.PublishIP) == nil {
		cli.Close()
		return nil, fmt.Errorf("docker publish IP %q is not an IP address", cfg.PublishIP)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if log == nil {
		log = slog.Default()
	}
	return &Driver{cli: cli, cfg: cfg, subnets: subnets, probes: make(chan struct{}, cfg.ProbeConcurrency), starts: make(chan struct{}, cfg.StartConcurrency), admit: newAdmission(cfg.StartingTenants), http: &http.Client{}, log: log}, nil
}

// Admit admits the tenant to start on the engine, or queues it (see
// admission).
func (d *Driver) Admit(ctx context.Context, tenant string, wait bool, progress func(runtimes.Admission)) (runtimes.Admission, error) {
	st, err := d.admit.admit(ctx, tenant, wait, progress)
	if err == nil {
		d.log.DebugContext(ctx, "admission", "tenant", tenant, "admission", st.String())
	}
	return st, err
}

// Client exposes the engine client for image builds and tests.
func (d *Driver) Client() *client.Client { return d.cli }

// Close releases the engine connection.
func (d *Driver) Close() error { return d.cli.Close() }

// NetworkName is the tenant's bridge network. It, VolumeName and
// ContainerName are the deterministic names that make retries find what an
// earlier attempt created. "_" cannot occur in a tenant name (a DNS label),
// so tenant "acme" volume "db-data" and tenant "acme-db" volume "data"
// never share a name.
func NetworkName(tenant string) string { return "tf-" + tenant }

// VolumeName is the tenant's volume vol.
func VolumeName(tenant, vol string) string { return "tf-" + tenant + "_" + vol }

// ContainerName is the container of the tenant's service svc (its
// generation 0; see InstanceName).
func ContainerName(tenant, svc string) string { return "tf-" + tenant + "_" + svc }

// InstanceName is the container of one generation of a service. Generation
// 0 keeps ContainerName, so tenants provisioned before releases existed
// (and the histories that name their containers) stay valid; a cut-over's
// candidate, generation N>0, is "tf-<tenant>_<svc>_<N>", which no other
// service can be named since "_" cannot occur in service names.
func InstanceName(tenant, svc string, gen int) string {
	if gen == 0 {
		return ContainerName(tenant, svc)
	}
	return ContainerName(tenant, svc) + "_" + strconv.Itoa(gen)
}

// ownedFilter selects the tenant's objects of one owner (any owner if "").
func ownedFilter(tenant, owner string) filters.Args {
	f := filters.NewArgs(filters.Arg("label", LabelTenant+"="+tenant))
	if owner != "" {
		f.Add("label", LabelOwner+"="+owner)
	}
	return f
}

// checkOwner refuses an object of the tenant's name that another
// provisioning (or something else entirely) made.
func checkOwner(kind, name, tenant, owner string, labels map[string]string) error {
	if labels[LabelTenant] != tenant || (owner != "" && labels[LabelOwner] != owner) {
		msg := fmt.Sprintf("%s %s exists but was not made by this provisioning of %s (owner %q): is the tenant already deployed?",
			kind, name, tenant, labels[LabelOwner])
		return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrResourceNotOurs, nil)
	}
	return nil
}

func ownedLabels(tenant, owner string) map[string]string {
	l := map[string]string{LabelManaged: "true", LabelTenant: tenant}
	if owner != "" {
		l[LabelOwner] = owner
	}
	return l
}

// CreateVolumes makes the tenant's named volumes. Docker returns the existing
// volume for a name that exists, which makes this idempotent by itself.
func (d *Driver) CreateVolumes(ctx context.Context, tenant, owner string, volumes []string) error {
	d.admit.renew(tenant, admissionLease)
	for _, v := range volumes {
		name := VolumeName(tenant, v)
		labels := ownedLabels(tenant, owner)
		labels[LabelVolume] = v
		vol, err := d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels})
		if err != nil {
			return fmt.Errorf("create volume %s: %w", name, err)
		}
		// An existing volume comes back as it is, with its own labels.
		if err := checkOwner("volume", name, tenant, owner, vol.Labels); err != nil {
			return err
		}
	}
	return nil
}

// StartService creates the container of the service's generation once and
// makes sure it runs. A generation above 0 is a release candidate: it runs
// beside the current instance, with the same alias and volumes.
func (d *Driver) StartService(ctx context.Context, tenant, owner string, svc spec.Service) (runtimes.ServiceStatus, error) {
	if svc.Generation < 0 {
		msg := fmt.Sprintf("service %s: generation %d is negative", svc.Name, svc.Generation)
		return runtimes.ServiceStatus{}, temporal.NewNonRetryableApplicationError(msg, runtimes.ErrInvalidServiceSpec, nil)
	}
	d.admit.renew(tenant, admissionLease)
	name := InstanceName(tenant, svc.Name, svc.Generation)
	hash := spec.SpecHash(tenant, svc)
	var id string
	err := slot(ctx, d.starts, func() error {
		var err error
		if id, err = d.ensureContainer(ctx, tenant, owner, name, hash, svc); err != nil {
			return err
		}
		if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return fmt.Errorf("start container %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return runtimes.ServiceStatus{}, err
	}
	d.admit.renew(tenant, startedLease)
	d.log.InfoContext(ctx, "service started", "tenant", tenant, "service", svc.Name, "generation", svc.Generation, "container", name)
	return runtimes.ServiceStatus{Service: svc.Name, ID: id, Image: svc.Image}, nil
}

// CreateService makes the service's container (once) without starting
// it; StartService then only starts it.
func (d *Driver) CreateService(ctx context.Context, tenant, owner string, svc spec.Service) (runtimes.ServiceStatus, error) {
	name := InstanceName(tenant, svc.Name, svc.Generation)
	var id string
	err := slot(ctx, d.starts, func() error {
		var err error
		id, err = d.ensureContainer(ctx, tenant, owner, name, spec.SpecHash(tenant, svc), svc)
		return err
	})
	if err != nil {
		return runtimes.ServiceStatus{}, err
	}
	return runtimes.ServiceStatus{Service: svc.Name, ID: id, Image: svc.Image}, nil
}

func (d *Driver) ensureContainer(ctx context.Context, tenant, owner, name, hash string, svc spec.Service) (string, error) {
	for attempt := 0; attempt < 3; attempt++ {
		existing, err := d.cli.ContainerInspect(ctx, name)
		if err == nil && existing.Config != nil {
			if err := checkOwner("container", name, tenant, owner, existing.Config.Labels); err != nil {
				return "", err
			}
		}
		switch {
		case err == nil && existing.Config != nil && existing.Config.Labels[LabelSpec] == hash:
			return existing.ID, nil
		case err == nil:
			// Ours, from an attempt with another spec: replace it.
			if err := d.cli.ContainerRemove(ctx, existing.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
				return "", fmt.Errorf("replace container %s: %w", name, err)
			}
		case !cerrdefs.IsNotFound(err):
			return "", fmt.Errorf("inspect container %s: %w", name, err)
		}
		cfg, hostCfg, netCfg := d.containerSpec(tenant, owner, hash, svc)
		created, err := d.cli.ContainerCreate(ctx, cfg, hostCfg, netCfg, nil, name)
		switch {
		case err == nil:
			return created.ID, nil
		case cerrdefs.IsConflict(err):
			continue // a concurrent attempt created it: inspect again
		case cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "No such image"):
			msg := fmt.Sprintf("service %s: image %s is not on the Docker host", svc.Name, svc.Image)
			return "", temporal.NewNonRetryableApplicationError(msg, runtimes.ErrImageNotFound, err)
		default:
			return "", fmt.Errorf("create container %s: %w", name, err)
		}
	}
	return "", fmt.Errorf("create container %s: name kept conflicting", name)
}

func (d *Driver) containerSpec(tenant, owner, hash string, svc spec.Service) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	env := make([]string, 0, len(svc.Env))
	for k, v := range svc.Env {
		env = append(env, k+"="+v)
	}
	cfg := &container.Config{
		Image:        svc.Image,
		Env:          env,
		Labels:       ownedLabels(tenant, owner),
		ExposedPorts: nat.PortSet{},
	}
	cfg.Labels[LabelService], cfg.Labels[LabelSpec] = svc.Name, hash
	if svc.Generation > 0 {
		cfg.Labels[LabelGeneration] = strconv.Itoa(svc.Generation)
	}
	if len(svc.Command) > 0 {
		cfg.Cmd = svc.Command
	}
	hostCfg := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		PortBindings:  nat.PortMap{},
		Resources: container.Resources{
			Memory:   svc.Resources.MemoryBytes(),
			NanoCPUs: int64(svc.Resources.CPUs * 1e9),
		},
	}
	if svc.Resources.Pids > 0 {
		pids := svc.Resources.Pids
		hostCfg.Resources.PidsLimit = &pids
	}
	if lc, ok := d.cfg.Ship.logConfig(tenant, svc); ok {
		hostCfg.LogConfig = lc
	}
	for _, p := range svc.Ports {
		port := nat.Port(strconv.Itoa(p.Container) + "/tcp")
		cfg.ExposedPorts[port] = struct{}{}
		if p.Public {
			// Host port 0: the engine picks a free one; it is read back by
			// WaitHealthy so a retry reuses the same container and port.
			hostCfg.PortBindings[port] = []nat.PortBinding{{HostIP: d.cfg.PublishIP, HostPort: "0"}}
		}
	}
	for _, m := range svc.Mounts {
		hostCfg.Mounts = append(hostCfg.Mounts, mount.Mount{Type: mount.TypeVolume, Source: VolumeName(tenant, m.Volume), Target: m.Path})
	}
	if h := svc.HealthCheck; h != nil && len(h.Command) > 0 {
		// The engine's own check is the steady one: the worker probes
		// a starting service itself (see WaitHealthy).
		cfg.Healthcheck = &container.HealthConfig{
			Test:        append([]string{"CMD"}, h.Command...),
			Interval:    orDefault(h.Interval.D(), steadyInterval),
			Timeout:     orDefault(h.Timeout.D(), 2*time.Second),
			StartPeriod: h.StartPeriod.D(),
			Retries:     orDefaultInt(h.Retries, 3),
		}
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		NetworkName(tenant): {Aliases: []string{svc.Name}},
	}}
	return cfg, hostCfg, netCfg
}

// probe runs one health probe in a probe slot.
func (d *Driver) probe(ctx context.Context, fn func() error) error { return slot(ctx, d.probes, fn) }

// slot runs fn holding one of slots, waiting for one as long as ctx allows.
func slot(ctx context.Context, slots chan struct{}, fn func() error) error {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-slots }()
	return fn()
}

// nextPace is a starting service's next probe pace: start at first, then
// stretched by probeBackoff up to maxProbePace (or first, if slower).
func nextPace(cur, first time.Duration) time.Duration {
	if cur == 0 {
		return first
	}
	return min(max(first, maxProbePace), time.Duration(float64(cur)*probeBackoff))
}

// steadyInterval is the engine's check interval of a service whose
// template sets none: one exec every 30 s per service lets a host carry
// hundreds of idle tenants.
const steadyInterval = 30 * time.Second

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func orDefaultInt(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// WaitHealthy polls every service (the instance of its generation) until its
// health check passes and returns the tenant's public endpoint. A service
// that Docker marks unhealthy, or that stays unready past its budget
// (env.HealthTimeout when set, else spec.HealthBudget), is a permanent failure.
// A release calls it with only the candidate in env.Services, and gets the
// candidate's own endpoint back.
func (d *Driver) WaitHealthy(ctx context.Context, env spec.Environment, progress func(string)) (runtimes.Endpoint, error) {
	pubSvc, pubPort, ok := env.PublicPort()
	if !ok {
		return runtimes.Endpoint{}, temporal.NewNonRetryableApplicationError("environment has no public port", runtimes.ErrInvalidServiceSpec, nil)
	}
	// Its start ends with the wait, whatever the outcome.
	d.admit.hold(env.Tenant)
	defer d.admit.leave(env.Tenant)
	start := time.Now()
	pending := map[string]spec.Service{}
	next := map[string]time.Time{}     // when each service is probed again
	pace := map[string]time.Duration{} // its current probe pace
	// stalled is the time the engine spent not running a service's probes.
	stalled := map[string]time.Duration{}
	for _, s := range env.Services {
		pending[s.Name] = s
	}
	var endpoint runtimes.Endpoint
	ticker := time.NewTicker(d.cfg.PollInterval)
	defer ticker.Stop()
	for {
		now := time.Now()
		for name, svc := range pending {
			if now.Before(next[name]) {
				continue
			}
			pace[name] = nextPace(pace[name], max(d.cfg.PollInterval, svc.HealthCheck.ProbeInterval()))
			cname := InstanceName(env.Tenant, name, svc.Generation)
			var info container.InspectResponse
			var res probeResult
			began := time.Now()
			err := d.probe(ctx, func() error {
				var err error
				if info, err = d.cli.ContainerInspect(ctx, cname); err != nil {
					return fmt.Errorf("inspect %s: %w", cname, err)
				}
				res = d.serviceHealthy(ctx, info, svc, pubPort)
				return nil
			})
			if err != nil {
				return runtimes.Endpoint{}, err
			}
			if res.engineStalled {
				// The engine, busy with other starts, did not run the
				// probe in time: that is not the service's time.
				stalled[name] += time.Since(began)
				d.admit.stalled()
			}
			next[name] = time.Now().Add(pace[name])
			if name == pubSvc.Name && endpoint.URL == "" {
				if u := d.publishedURL(info, pubPort.Container); u != "" {
					endpoint.URL = u
				}
			}
			if res.healthy {
				delete(pending, name)
				continue
			}
			if judgedUnhealthy(info, res) {
				msg := fmt.Sprintf("service %s is unhealthy: %s", name, res.why)
				return runtimes.Endpoint{}, temporal.NewNonRetryableApplicationError(msg, runtimes.ErrServiceUnhealthy, nil)
			}
			budget := env.ServiceBudget(svc)
			// Up to one budget of stalls is forgiven: a host swamped
			// for longer is not the service's fault either, but the
			// wait must end.
			if time.Since(start)-min(stalled[name], budget) > budget {
				msg := fmt.Sprintf("service %s not healthy after %s: %s", name, time.Since(start).Round(time.Second), res.why)
				return runtimes.Endpoint{}, temporal.NewNonRetryableApplicationError(msg, runtimes.ErrServiceUnhealthy, nil)
			}
			progress(fmt.Sprintf("waiting for %s: %s", name, res.why))
		}
		if len(pending) == 0 {
			if endpoint.URL == "" {
				return runtimes.Endpoint{}, fmt.Errorf("service %s: public port %d is not published", pubSvc.Name, pubPort.Container)
			}
			return endpoint, nil
		}
		select {
		case <-ctx.Done():
			return runtimes.Endpoint{}, ctx.Err()
		case <-ticker.C:
		}
	}
}

// judgedUnhealthy says whether the service failed its health check for
// good: the engine marked it unhealthy and the worker's own probe, run
// just now, did not find it healthy either. When that probe stalled (the
// engine answered no exec in time), the mark says as little: the engine's
// own checks time out the same way on a host swamped by a batch of
// starts (200 tenants requested at once failed 29 of them so), so the
// wait goes on within the service's budget, stalls forgiven, as for any
// other stall.
func judgedUnhealthy(info container.InspectResponse, res probeResult) bool {
	marked := info.ContainerJSONBase != nil && info.State != nil && info.State.Health != nil && info.State.Health.Status == "unhealthy"
	return marked && !res.healthy && !res.engineStalled
}

func (d *Driver) publishedURL(info container.InspectResponse, port int) string {
	if info.NetworkSettings == nil {
		return ""
	}
	for _, b := range info.NetworkSettings.Ports[nat.Port(strconv.Itoa(port)+"/tcp")] {
		if b.HostPort != "" && b.HostPort != "0" {
			return "http://" + net.JoinHostPort(d.cfg.PublishIP, b.HostPort)
		}
	}
	return ""
}

// serviceHealthy probes the service once: a command check by running its
// command in the container (unless the engine's own steady check already
// found it healthy), an HTTP check through the published port when it
// targets the public port, otherwise on the container's address in the
// tenant network.
func (d *Driver) serviceHealthy(ctx context.Context, info container.InspectResponse, svc spec.Service, pub spec.Port) probeResult {
	if info.State == nil || !info.State.Running {
		status := "not running"
		if info.State != nil {
			status = info.State.Status
		}
		return probeResult{why: status}
	}
	h := svc.HealthCheck
	switch {
	case h == nil:
		return probeResult{healthy: true}
	case len(h.Command) > 0:
		if info.State.Health != nil && info.State.Health.Status == "healthy" {
			return probeResult{healthy: true}
		}
		// The engine's own check runs at the steady pace: probe now.
		return d.probeCommand(ctx, info.ID, h)
	default:
		var base string
		if svc.Ports != nil && h.HTTP.Port == pub.Container {
			base = d.publishedURL(info, pub.Container)
		} else if info.NetworkSettings != nil {
			if ep := info.NetworkSettings.Networks[NetworkName(info.Config.Labels[LabelTenant])]; ep != nil && ep.IPAddress != "" {
				base = "http://" + net.JoinHostPort(ep.IPAddress, strconv.Itoa(h.HTTP.Port))
			}
		}
		if base == "" {
			return probeResult{why: "no address yet"}
		}
		ok, why := probeHTTP(ctx, d.http, base+h.HTTP.Path, orDefault(h.Timeout.D(), 2*time.Second))
		return probeResult{healthy: ok, why: why}
	}
}

// probeResult is one probe's verdict. engineStalled tells that the engine
// did not run the probe at all in time (it answered no exec): the service
// was not judged.
type probeResult struct {
	healthy       bool
	why           string
	engineStalled bool
}

// probeCommand runs the health check's command in the container once, as
// the engine's check would, and tells whether it exited 0 within the
// check's timeout.
func (d *Driver) probeCommand(ctx context.Context, id string, h *spec.HealthCheck) probeResult {
	ctx, cancel := context.WithTimeout(ctx, orDefault(h.Timeout.D(), 2*time.Second))
	defer cancel()
	// Only the exit code counts; the end of stderr comes with a failure.
	err := d.exec(ctx, id, h.Command, nil, io.Discard)
	if err == nil {
		return probeResult{healthy: true}
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == ErrServiceCommandFailed {
		return probeResult{why: appErr.Message()}
	}
	return probeResult{why: err.Error(), engineStalled: true}
}

func probeHTTP(ctx context.Context, c *http.Client, url string, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, ""
	}
	// The start of the answer often says why (ops read it in the failure).
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	why := "HTTP " + resp.Status
	if line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n"); line != "" {
		why += ": " + line
	}
	return false, why
}

// RemoveServices force-removes every container of the tenant (of owner).
func (d *Driver) RemoveServices(ctx context.Context, tenant, owner string) error {
	d.admit.leave(tenant)
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: ownedFilter(tenant, owner)})
	if err != nil {
		return fmt.Errorf("list containers of %s: %w", tenant, err)
	}
	var errs error
	for _, c := range list {
		err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = errors.Join(errs, fmt.Errorf("remove container %s: %w", c.ID[:12], err))
		}
	}
	return errs
}

// RemoveVolumes deletes the tenant's volumes of owner (containers must be gone).
func (d *Driver) RemoveVolumes(ctx context.Context, tenant, owner string) error {
	list, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: ownedFilter(tenant, owner)})
	if err != nil {
		return fmt.Errorf("list volumes of %s: %w", tenant, err)
	}
	var errs error
	for _, v := range list.Volumes {
		if err := d.cli.VolumeRemove(ctx, v.Name, false); err != nil && !cerrdefs.IsNotFound(err) {
			errs = errors.Join(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
		}
	}
	return errs
}

// RemoveNetwork removes the tenant's network(s) of owner.
func (d *Driver) RemoveNetwork(ctx context.Context, tenant, owner string) error {
	list, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: ownedFilter(tenant, owner)})
	if err != nil {
		return fmt.Errorf("list networks of %s: %w", tenant, err)
	}
	var errs error
	for _, n := range list {
		if err := d.cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = errors.Join(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
		}
	}
	return errs
}

var _ runtimes.Driver = (*Driver)(nil)
