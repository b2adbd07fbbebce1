package docker

import (
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// A starting service is probed at its start pace, then less and less
// often up to maxProbePace; a pace slower than that is kept.
func TestProbePaceBacksOff(t *testing.T) {
	ms := time.Millisecond
	var got []time.Duration
	pace := time.Duration(0)
	for range 8 {
		pace = nextPace(pace, 200*ms)
		got = append(got, pace)
	}
	want := []time.Duration{200 * ms, 300 * ms, 450 * ms, 675 * ms, 1012500 * time.Microsecond, 1518750 * time.Microsecond, 2 * time.Second, 2 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("paces %v, want %v", got, want)
		}
	}
	if p := nextPace(nextPace(0, 5*time.Second), 5*time.Second); p != 5*time.Second {
		t.Fatalf("a 5s pace became %s", p)
	}
}

func TestConcurrencySettingsAreChecked(t *testing.T) {
	for _, c := range []Config{{ProbeConcurrency: -1}, {StartConcurrency: -1}} {
		if err := c.Validate(); err == nil {
			t.Fatalf("%+v accepted", c)
		}
	}
}

// The engine's "unhealthy" mark fails a service only when the worker's
// own probe ran and failed too: a probe the engine did not run in time
// (a swamped host) leaves the verdict to the budget.
func TestUnhealthyMarkNeedsTheWorkersProbe(t *testing.T) {
	state := func(status string) container.InspectResponse {
		return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{
			State: &container.State{Running: true, Health: &container.Health{Status: status}},
		}}
	}
	tests := []struct {
		name   string
		status string
		res    probeResult
		want   bool
	}{
		{"marked, probe failed", container.Unhealthy, probeResult{why: "exited with 1"}, true},
		{"marked, probe stalled", container.Unhealthy, probeResult{why: "inspect exec: context deadline exceeded", engineStalled: true}, false},
		{"marked, probe passed", container.Unhealthy, probeResult{healthy: true}, false},
		{"starting, probe failed", container.Starting, probeResult{why: "exited with 1"}, false},
	}
	for _, tt := range tests {
		if got := judgedUnhealthy(state(tt.status), tt.res); got != tt.want {
			t.Errorf("%s: judgedUnhealthy = %v, want %v", tt.name, got, tt.want)
		}
	}
	if judgedUnhealthy(container.InspectResponse{}, probeResult{}) {
		t.Error("a container without state was judged")
	}
}
