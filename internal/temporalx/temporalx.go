// Package temporalx turns Tenantflow's Temporal settings into a connected
// client: address, namespace, TLS/mTLS or API key, the encrypting data
// converter, slog logging and Prometheus metrics. The worker and the API
// both dial through it so they always agree on the data converter.
package temporalx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/opentelemetry"
	tlog "go.temporal.io/sdk/log"

	"github.com/tenantflow/tenantflow/internal/codec"
	"github.com/tenantflow/tenantflow/internal/config"
)

// Config are the settings for reaching a Temporal cluster.
type Config struct {
	Address       string
	Namespace     string
	TaskQueue     string
	TLS           bool
	TLSCert       string
	TLSKey        string
	TLSCA         string
	TLSServerName string
	APIKey        string
	// CodecKeys is the payload encryption keyring ("id:base64,…").
	CodecKeys string
}

// Register binds the settings to flags and TENANTFLOW_* variables.
func (c *Config) Register(s *config.Set) {
	s.String(&c.Address, "temporal-address", "TENANTFLOW_TEMPORAL_ADDRESS", "127.0.0.1:7233", "Temporal frontend host:port")
	s.String(&c.Namespace, "temporal-namespace", "TENANTFLOW_TEMPORAL_NAMESPACE", "default", "Temporal namespace")
	s.String(&c.TaskQueue, "task-queue", "TENANTFLOW_TASK_QUEUE", "tenantflow", "task queue shared by all Tenantflow workers")
	s.Bool(&c.TLS, "temporal-tls", "TENANTFLOW_TEMPORAL_TLS", false, "connect with TLS (implied by the cert/CA/API key settings)")
	s.String(&c.TLSCert, "temporal-tls-cert", "TENANTFLOW_TEMPORAL_TLS_CERT", "", "client certificate (PEM) for mTLS")
	s.String(&c.TLSKey, "temporal-tls-key", "TENANTFLOW_TEMPORAL_TLS_KEY", "", "client key (PEM) for mTLS")
	s.String(&c.TLSCA, "temporal-tls-ca", "TENANTFLOW_TEMPORAL_TLS_CA", "", "CA bundle (PEM) to verify the server")
	s.String(&c.TLSServerName, "temporal-tls-server-name", "TENANTFLOW_TEMPORAL_TLS_SERVER_NAME", "", "server name to verify, if not the address host")
	s.Secret(&c.APIKey, "temporal-api-key", "TENANTFLOW_TEMPORAL_API_KEY", "API key (Temporal Cloud)")
	s.Secret(&c.CodecKeys, "codec-keys", "TENANTFLOW_CODEC_KEYS", "payload encryption keys id:base64(32 bytes),…; the first encrypts (required)")
}

// Validate reports every bad setting by its variable name.
func (c *Config) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, errors.New("TENANTFLOW_TEMPORAL_ADDRESS is empty"))
	}
	if c.Namespace == "" {
		errs = append(errs, errors.New("TENANTFLOW_TEMPORAL_NAMESPACE is empty"))
	}
	if c.TaskQueue == "" {
		errs = append(errs, errors.New("TENANTFLOW_TASK_QUEUE is empty"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("TENANTFLOW_TEMPORAL_TLS_CERT and TENANTFLOW_TEMPORAL_TLS_KEY go together"))
	}
	if _, err := codec.ParseKeys(c.CodecKeys); err != nil {
		errs = append(errs, fmt.Errorf("TENANTFLOW_CODEC_KEYS: %w", err))
	}
	return errors.Join(errs...)
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS && c.TLSCert == "" && c.TLSCA == "" && c.APIKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLSServerName}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("TENANTFLOW_TEMPORAL_TLS_CERT/KEY: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("TENANTFLOW_TEMPORAL_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TENANTFLOW_TEMPORAL_TLS_CA %s: no PEM certificates", c.TLSCA)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Keyring returns the parsed codec keys (Validate has checked them).
func (c *Config) Keyring() (*codec.Keyring, error) { return codec.ParseKeys(c.CodecKeys) }

// MetricsHandler exports SDK metrics (workflow/activity latencies, task
// slots, poll results) to a Prometheus registry through OpenTelemetry.
func MetricsHandler(reg prometheus.Registerer) (client.MetricsHandler, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return opentelemetry.NewMetricsHandler(opentelemetry.MetricsHandlerOptions{
		Meter:   provider.Meter("temporal-sdk-go"),
		OnError: func(err error) { slog.Default().Warn("temporal metrics", "error", err) },
	}), nil
}

// Dial connects to Temporal and checks the namespace answers, so a wrong
// address or namespace fails at start-up with the setting's name.
func Dial(ctx context.Context, c Config, log *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	keys, err := c.Keyring()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	opts := client.Options{
		HostPort:         c.Address,
		Namespace:        c.Namespace,
		Logger:           tlog.NewStructuredLogger(log),
		DataConverter:    keys.DataConverter(),
		FailureConverter: keys.FailureConverter(),
		MetricsHandler:   metrics,
		ConnectionOptions: client.ConnectionOptions{
			TLS: tlsCfg,
		},
	}
	if c.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.APIKey)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cl, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (TENANTFLOW_TEMPORAL_ADDRESS), namespace %s: %w", c.Address, c.Namespace, err)
	}
	return cl, nil
}
