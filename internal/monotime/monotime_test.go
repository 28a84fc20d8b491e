package monotime

import (
	"testing"
	"time"
)

func TestNowKeepsTheMonotonicReading(t *testing.T) {
	a := Now()
	b := time.Now()
	c := Now()
	// Round(0) strips the monotonic reading: a Now whose reading had been
	// lost would print without the "m=" suffix.
	if a.String() == a.Round(0).String() {
		t.Fatalf("Now() has no monotonic reading: %v", a)
	}
	if b.Before(a) || c.Before(b) {
		t.Fatalf("readings out of order: %v, %v, %v", a, b, c)
	}
	if d := c.Sub(a); d < 0 || d > time.Minute {
		t.Fatalf("c - a = %v", d)
	}
	if w := b.Round(0).Sub(a.Round(0)); w < -time.Second || w > time.Second {
		t.Fatalf("wall clock readings %v apart", w)
	}
}

func BenchmarkNow(b *testing.B) {
	for b.Loop() {
		_ = Now()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		_ = time.Now()
	}
}
