package docker

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	"github.com/docker/docker/api/types/container"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Central log shipping. With TENANTFLOW_LOGS_SYSLOG_ADDRESS set, every
// tenant container is created with the engine's syslog log driver: its
// output goes to the receiver as it is written, each line tagged
// <tenant>/<service>/<generation> (the syslog APP-NAME), so the receiver
// files or filters each tenant's lines apart and never mixes them. The
// engine keeps a local copy of the output (its dual logging, Docker ≥
// 20.10), so GET /v1/tenants/{name}/logs reads it as before. The setting
// applies to containers created after it: a tenant's next cut-over ships.

// Settings of log shipping, named in start-up errors.
const (
	EnvShipAddress  = "TENANTFLOW_LOGS_SYSLOG_ADDRESS"
	EnvShipFormat   = "TENANTFLOW_LOGS_SYSLOG_FORMAT"
	EnvShipFacility = "TENANTFLOW_LOGS_SYSLOG_FACILITY"
)

// Shipping says where tenant containers' output is shipped.
type Shipping struct {
	// Address is the syslog receiver: udp://host:port (the default
	// choice: a receiver that is down never stops a tenant),
	// tcp://host:port or tcp+tls://host:port (the engine connects when the
	// container starts, so a receiver that is down fails the start and
	// the operation is retried), or unix:// / unixgram:// a socket path.
	// Empty: no shipping.
	Address string
	// Format is the syslog format: rfc5424micro (the default:
	// microsecond timestamps), rfc5424 or rfc3164.
	Format string
	// Facility is the syslog facility (default daemon).
	Facility string
}

// Validate names the bad setting.
func (s Shipping) Validate() error {
	if s.Address == "" {
		return nil
	}
	u, err := url.Parse(s.Address)
	if err != nil {
		return fmt.Errorf("%s %q is not a URL such as udp://host:port", EnvShipAddress, s.Address)
	}
	switch u.Scheme {
	case "udp", "tcp", "tcp+tls":
		host, port, err := net.SplitHostPort(u.Host)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%s %q: want %s://host:port", EnvShipAddress, s.Address, u.Scheme)
		}
	case "unix", "unixgram":
		if u.Path == "" {
			return fmt.Errorf("%s %q: want %s:///path/of/the/socket", EnvShipAddress, s.Address, u.Scheme)
		}
	default:
		return fmt.Errorf("%s %q: the scheme must be udp, tcp, tcp+tls, unix or unixgram", EnvShipAddress, s.Address)
	}
	switch s.Format {
	case "", "rfc5424micro", "rfc5424", "rfc3164":
	default:
		return fmt.Errorf("%s %q is not rfc5424micro, rfc5424 or rfc3164", EnvShipFormat, s.Format)
	}
	switch s.Facility {
	case "", "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
		"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7":
	default:
		return fmt.Errorf("%s %q is not a syslog facility (e.g. daemon, local0)", EnvShipFacility, s.Facility)
	}
	return nil
}

// ShipTag is the tag of a service's shipped lines:
// <tenant>/<service>/<generation>. A 40-character tenant name with a long
// service name exceeds syslog's 48-character APP-NAME, which a receiver
// may cut; the tenant comes first, so it is always there.
func ShipTag(tenant string, svc spec.Service) string {
	return tenant + "/" + svc.Name + "/" + strconv.Itoa(svc.Generation)
}

// logConfig is the log driver of svc's container when shipping is on.
func (s Shipping) logConfig(tenant string, svc spec.Service) (container.LogConfig, bool) {
	if s.Address == "" {
		return container.LogConfig{}, false
	}
	format, facility := s.Format, s.Facility
	if format == "" {
		format = "rfc5424micro"
	}
	if facility == "" {
		facility = "daemon"
	}
	return container.LogConfig{Type: "syslog", Config: map[string]string{
		"syslog-address":  s.Address,
		"syslog-format":   format,
		"syslog-facility": facility,
		"tag":             ShipTag(tenant, svc),
	}}, true
}
