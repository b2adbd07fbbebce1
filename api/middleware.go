package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// unmatchedRoute labels requests no route matched, so scanners probing random
// paths cannot blow up the metrics' cardinality.
const unmatchedRoute = "unmatched"

// metrics are the API's Prometheus collectors, one set per router.
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	auditFailures prometheus.Counter
}

// newMetrics creates the collectors and registers them on reg (if not nil).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantflow_api_requests_total",
			Help: "HTTP requests served by the Tenantflow API, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tenantflow_api_request_duration_seconds",
			Help:    "Time to serve an HTTP request of the Tenantflow API, by route and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tenantflow_audit_write_failures_total",
			Help: "Audit entries the API could not store (each is still in its JSON log).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.auditFailures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	return m, nil
}

// routeOf is the matched route pattern ("/v1/tenants/:name"), which keeps
// tenant names out of metric labels.
func routeOf(c *gin.Context) string {
	if r := c.FullPath(); r != "" {
		return r
	}
	return unmatchedRoute
}

// observe logs one JSON line per request and records its metrics. It logs
// neither the Authorization header nor bodies: they carry tokens and tenant
// data. Successful probes and scrapes are logged at debug level only, so they
// do not drown the requests people made.
func observe(log *slog.Logger, m *metrics) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		elapsed := time.Since(start)

		route, method, status := routeOf(c), c.Request.Method, c.Writer.Status()
		m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())

		attrs := []slog.Attr{
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("latency_ms", float64(elapsed.Microseconds())/1000),
		}
		if role := roleOf(c); role != "" {
			attrs = append(attrs, slog.String("role", role), slog.String("caller", c.GetString(ctxCaller)))
		}
		if name := c.Param("name"); name != "" {
			attrs = append(attrs, slog.String("tenant", name))
		}
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status < 400 && (route == "/healthz" || route == "/metrics"):
			level = slog.LevelDebug
		}
		log.LogAttrs(c.Request.Context(), level, "http request", attrs...)
	}
}

// recovery turns a handler panic into a logged 500 so one bad request cannot
// take the API down. It sits inside observe, so the 500 is logged and counted
// like any other response.
func recovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v) // the client is gone; net/http handles this one quietly
			}
			log.Error("panic in handler", "method", c.Request.Method, "route", routeOf(c),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if c.Writer.Written() {
				c.Abort()
				return
			}
			c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
		}()
		c.Next()
	}
}
