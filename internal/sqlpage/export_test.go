package sqlpage

import "time"

// Encode makes a cursor of list at (t, id), for tests that craft cursors.
func Encode(list string, t time.Time, id string, offset int) string {
	return encodeCursor(cursor{List: list, Time: t, ID: id, Offset: offset})
}
