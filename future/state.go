package future

import "strconv"

// State is where a future is in its life. A future moves Pending → Running →
// one of the three final states, or straight from Pending to a final state;
// it never leaves a final state.
type State int

const (
	// Pending: submitted, not started.
	Pending State = iota
	// Running: Promise.Start was called and the work is under way.
	Running
	// Succeeded: resolved without an error.
	Succeeded
	// Failed: resolved with an error.
	Failed
	// Cancelled: Future.Cancel won before any outcome.
	Cancelled
)

var stateNames = [...]string{"pending", "running", "succeeded", "failed", "cancelled"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Final reports whether s is one of the states a future ends in.
func (s State) Final() bool { return s >= Succeeded }
