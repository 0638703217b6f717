// Package retry holds the enclave's waits before trying again: a doubling backoff and the
// jitter that keeps work which failed together from retrying together. The pipeline's
// Chainalysis calls and both kinds of job use it, so there is one formula to reason about.
package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff is a delay from Base doubling up to Cap, spread by ±20 %.
type Backoff struct {
	Base, Cap time.Duration
}

// Delay is the wait before try n (0-based).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 0; i < n && d < b.Cap; i++ {
		d *= 2
	}
	return Jitter(min(d, b.Cap), 0.2)
}

// Jitter spreads d at random by up to ±spread (a fraction of d).
func Jitter(d time.Duration, spread float64) time.Duration {
	if d <= 0 {
		return 0
	}
	return d + time.Duration((rand.Float64()*2-1)*spread*float64(d))
}
