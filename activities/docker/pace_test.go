package docker

import (
	"testing"
	"time"
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
