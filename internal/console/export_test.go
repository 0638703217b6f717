package console

import "time"

// FreezeLoginClock makes c's login limiter see the time as now, whatever the real time.
func FreezeLoginClock(c *Console, now time.Time) {
	c.limits.mu.Lock()
	defer c.limits.mu.Unlock()
	c.limits.now = func() time.Time { return now }
}
