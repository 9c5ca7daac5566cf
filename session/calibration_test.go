package session_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tracemark/tracemark/internal/clock"
	"github.com/tracemark/tracemark/marker"
	"github.com/tracemark/tracemark/session"
)

// TestNewDoesNotWaitForCalibration runs TestHelperBlockedCalibration in a
// fresh process, where the clock has not been calibrated yet: session.New
// must return, and record and convert timestamps, while the clock's
// calibration is blocked. Waiting for it would hang until the timeout.
func TestNewDoesNotWaitForCalibration(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBlockedCalibration$", "-test.v", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), "TRACEMARK_TEST_BLOCKED_CALIBRATION=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelperBlockedCalibration") {
		t.Fatalf("helper: %v\n%s", err, out)
	}
}

// TestHelperBlockedCalibration is the process of the test above.
func TestHelperBlockedCalibration(t *testing.T) {
	if os.Getenv("TRACEMARK_TEST_BLOCKED_CALIBRATION") != "1" {
		t.Skip("helper process")
	}
	release := clock.BlockRefinement()
	defer release()
	m := marker.Define1("stest_calib:ev", marker.Int("n"))
	s, err := session.New("calib")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if _, err := s.Enable("stest_calib:*", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	before := session.Now()
	m.Fire(1)
	after := session.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	var n int
	err = s.Drain(func(p session.Packet) error {
		n += int(p.Events)
		if ts := int64(p.BeginTS); ts < before || ts > after {
			t.Errorf("event at %d, outside [%d, %d] (clock %s)", ts, before, after, clock.Source())
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("drained %d events, %v", n, err)
	}
	t.Logf("clock %s", clock.Source())
}
