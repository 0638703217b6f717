package logthrottle

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRepeatsArePassedOncePerWindowWithACount(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	h := New(slog.NewTextHandler(&b, nil), time.Minute, slog.LevelWarn)
	log := slog.New(h).With("component", "river")
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	emit := func(d time.Duration, level slog.Level, msg string) {
		r := slog.NewRecord(at.Add(d), level, msg, 0)
		require.NoError(t, log.Handler().Handle(context.Background(), r))
	}
	for i := range 300 { // five minutes' worth of a fetch failing every second
		emit(time.Duration(i)*time.Second, slog.LevelError, "producer: Error fetching jobs")
	}
	emit(0, slog.LevelError, "another failure")
	emit(0, slog.LevelInfo, "an info line")
	emit(time.Second, slog.LevelInfo, "an info line")

	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var fetch []string
	for _, l := range lines {
		if strings.Contains(l, "Error fetching jobs") {
			fetch = append(fetch, l)
		}
	}
	require.Len(t, fetch, 5, "one line a minute:\n%s", b.String())
	require.NotContains(t, fetch[0], "suppressed")
	require.Contains(t, fetch[1], "suppressed=59")
	require.Contains(t, b.String(), "another failure", "another message has its own window")
	require.Equal(t, 2, strings.Count(b.String(), "an info line"), "below the level nothing is held back")
	require.Contains(t, fetch[1], "component=river", "attributes are kept")
}
