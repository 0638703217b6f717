package sqlpage_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/dbtest"
	"github.com/travelrule/enclave/internal/sqlpage"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type item struct {
	ID      string    `db:"id"`
	Created time.Time `db:"created_at"`
	Kind    string    `db:"kind"`
}

func key(i item) sqlpage.Key { return sqlpage.Key{Time: i.Created, ID: i.ID} }

var items = sqlpage.List{Name: "items", From: "items", Columns: "id, created_at, kind", Time: "created_at", ID: "id", UUIDKey: true}

// seed makes a table of n items, created one a millisecond apart except that every run of
// three shares its created_at (ties the id must order), every seventh of kind 'odd'.
func seed(t testing.TB, n int) *sqlx.DB {
	db, err := sqlx.Open("pgx", dbtest.URL(t)) // the driver the enclave runs on
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(fmt.Sprintf(`CREATE TABLE items (id uuid PRIMARY KEY, created_at timestamptz NOT NULL, kind text NOT NULL);
		INSERT INTO items SELECT md5(i::text)::uuid, '2024-01-01'::timestamptz + (i / 3) * interval '1 millisecond',
			CASE WHEN i %% 7 = 0 THEN 'odd' ELSE 'even' END FROM generate_series(1, %d) i;
		CREATE INDEX ON items (created_at DESC, id); ANALYZE items`, n))
	require.NoError(t, err)
	return db
}

// TestCursorsVisitEveryRowOnceInOrder: following next from the first page reads every
// matching row exactly once, in the list's order (ties on created_at by id), and the last
// page has no next.
func TestCursorsVisitEveryRowOnceInOrder(t *testing.T) {
	t.Parallel()
	db := seed(t, 100)
	ctx := context.Background()
	for _, kind := range []string{"", "odd"} {
		var w sqlpage.Where
		want := `SELECT id, created_at, kind FROM items ORDER BY created_at DESC, id`
		if kind != "" {
			w.Add("kind = $%d", kind)
			want = `SELECT id, created_at, kind FROM items WHERE kind = 'odd' ORDER BY created_at DESC, id`
		}
		var all []item
		require.NoError(t, db.Select(&all, want))
		var got []item
		r := sqlpage.Request{Limit: 7}
		for pages := 0; ; pages++ {
			require.Less(t, pages, 100, "next never ran out")
			rows, p, err := sqlpage.Select(ctx, db, items, w, r, key)
			require.NoError(t, err)
			require.Equal(t, len(all), p.Total)
			require.False(t, p.Estimated)
			require.Equal(t, len(got), p.Offset, "offset counts the rows before the page")
			if pages%2 == 1 && len(rows) > 3 {
				// A page stopped early (the API does at its byte bound) continues after the
				// rows it kept.
				rows, p = rows[:3], p.Cut(3)
				require.NotEmpty(t, p.Next)
			} else if p.Next != "" {
				require.Len(t, rows, 7, "a page with a next is full")
			}
			require.Equal(t, p.Next, p.Cut(len(rows)).Next, "a cut at the page's length changes nothing")
			got = append(got, rows...)
			if p.Next == "" {
				break
			}
			r.Cursor = p.Next
		}
		require.Equal(t, ids(all), ids(got), "kind %q", kind)
	}
}

// TestRankedCursorsVisitEveryRowOnceInOrder: a list with a Rank (a work queue: smallest rank
// first, then oldest, ties by id) is followed by cursor as the newest-first lists are, every
// row once, in that order.
func TestRankedCursorsVisitEveryRowOnceInOrder(t *testing.T) {
	t.Parallel()
	db := seed(t, 100)
	ctx := context.Background()
	const rank = "CASE kind WHEN 'odd' THEN 0 ELSE 1 END"
	ranked := items
	ranked.Name, ranked.Rank, ranked.Columns = "ranked items", rank, items.Columns+", "+rank+" AS rank"
	type rankedItem struct {
		item
		Rank int `db:"rank"`
	}
	var all []rankedItem
	require.NoError(t, db.Select(&all, `SELECT id, created_at, kind, `+rank+` AS rank FROM items ORDER BY `+rank+`, created_at, id`))
	require.Equal(t, "odd", all[0].Kind, "the smallest rank first")
	var got []string
	r := sqlpage.Request{Limit: 6}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100, "next never ran out")
		rows, p, err := sqlpage.Select(ctx, db, ranked, sqlpage.Where{}, r, func(i rankedItem) sqlpage.Key {
			return sqlpage.Key{Rank: i.Rank, Time: i.Created, ID: i.ID}
		})
		require.NoError(t, err)
		require.Equal(t, len(got), p.Offset)
		for _, x := range rows {
			got = append(got, x.ID)
		}
		if p.Next == "" {
			break
		}
		r.Cursor = p.Next
	}
	want := make([]string, len(all))
	for i, x := range all {
		want[i] = x.ID
	}
	require.Equal(t, want, got)
	_, _, err := sqlpage.Select(ctx, db, items, sqlpage.Where{}, r, key)
	require.Error(t, err, "a cursor of the ranked list is refused by the newest-first one")
}

func ids(is []item) []string {
	out := make([]string, len(is))
	for i, x := range is {
		out[i] = x.ID
	}
	return out
}

// TestOffsetPageHasNext: a page read by offset gives the cursor of the page after it, so a
// client may switch from offsets to cursors; a full last page has no next.
func TestOffsetPageHasNext(t *testing.T) {
	t.Parallel()
	db := seed(t, 30)
	ctx := context.Background()
	first, p, err := sqlpage.Select(ctx, db, items, sqlpage.Where{}, sqlpage.Request{Limit: 10, Offset: 10}, key)
	require.NoError(t, err)
	require.Equal(t, 10, p.Offset)
	second, p, err := sqlpage.Select(ctx, db, items, sqlpage.Where{}, sqlpage.Request{Limit: 10, Cursor: p.Next}, key)
	require.NoError(t, err)
	require.Equal(t, 20, p.Offset)
	require.Empty(t, p.Next, "the last page, exactly full, has no next")
	byOffset, _, err := sqlpage.Select(ctx, db, items, sqlpage.Where{}, sqlpage.Request{Limit: 20, Offset: 10}, key)
	require.NoError(t, err)
	require.Equal(t, ids(byOffset), append(ids(first), ids(second)...))

	empty, p, err := sqlpage.Select(ctx, db, items, sqlpage.Where{}, sqlpage.Request{Limit: 10, Offset: 30}, key)
	require.NoError(t, err)
	require.NotNil(t, empty, "an empty page is [], not null")
	require.Empty(t, empty)
	require.Empty(t, p.Next)
}

// TestCountIsExactUpToAThreshold: up to ExactUpTo matches the total is exact; past it, it is
// the planner's estimate, marked, and never below ExactUpTo+1; count=exact counts them all.
func TestCountIsExactUpToAThreshold(t *testing.T) {
	t.Parallel()
	n := sqlpage.ExactUpTo + 500
	db := seed(t, n)
	ctx := context.Background()
	_, p, err := sqlpage.Select(ctx, db, items, sqlpage.Where{}, sqlpage.Request{Limit: 1}, key)
	require.NoError(t, err)
	require.True(t, p.Estimated)
	require.Greater(t, p.Total, sqlpage.ExactUpTo)
	require.InDelta(t, n, p.Total, float64(n)/10, "ANALYZEd: the estimate is close")

	_, p, err = sqlpage.Select(ctx, db, items, sqlpage.Where{}, sqlpage.Request{Limit: 1, Exact: true}, key)
	require.NoError(t, err)
	require.False(t, p.Estimated)
	require.Equal(t, n, p.Total)

	var w sqlpage.Where
	w.Add("kind = $%d", "odd")
	_, p, err = sqlpage.Select(ctx, db, items, w, sqlpage.Request{Limit: 1}, key)
	require.NoError(t, err)
	require.False(t, p.Estimated)
	require.Equal(t, n/7, p.Total)
}

// TestBadCursors: a cursor that is not one, was made for another list, or carries a key
// that is not of the list's types is BAD-REQUEST naming cursor; it never reaches SQL as text.
func TestBadCursors(t *testing.T) {
	t.Parallel()
	db := seed(t, 5)
	ctx := context.Background()
	other := sqlpage.List{Name: "others", From: "items", Columns: "id, created_at, kind", Time: "created_at", ID: "id", UUIDKey: true}
	_, p, err := sqlpage.Select(ctx, db, other, sqlpage.Where{}, sqlpage.Request{Limit: 1}, key)
	require.NoError(t, err)
	require.NotEmpty(t, p.Next)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for name, c := range map[string]string{
		"AnotherList":   p.Next,
		"NotBase64":     "%%%",
		"NotJSON":       b64("hello"),
		"Injection":     b64(`{"l":"items","t":0,"k":"' OR 1=1 --"}`),
		"NoID":          b64(`{"l":"items","t":0,"k":""}`),
		"NUL":           b64(`{"l":"items","t":0,"k":"a\u0000"}`),
		"YearPastDB":    b64(`{"l":"items","t":9223372036854775807,"k":"3fa85f64-5717-4562-b3fc-2c963f66afa6"}`),
		"NegativeCount": b64(`{"l":"items","t":0,"k":"3fa85f64-5717-4562-b3fc-2c963f66afa6","o":-1}`),
	} {
		_, _, err := sqlpage.Select(ctx, db, items, sqlpage.Where{}, sqlpage.Request{Limit: 1, Cursor: c}, key)
		e, ok := apperr.As(err)
		require.True(t, ok, "%s: %v", name, err)
		require.Equal(t, apperr.BadRequest, e.Code, name)
		require.True(t, strings.HasPrefix(e.Message, "cursor: "), "%s: %s", name, e.Message)
	}
	// A text key (no UUIDKey) is any storable text, bound as a parameter: a quote is data.
	text := items
	text.UUIDKey, text.ID = false, "id::text"
	rows, _, err := sqlpage.Select(ctx, db, text, sqlpage.Where{}, sqlpage.Request{Limit: 1, Cursor: b64(`{"l":"items","t":0,"k":"' OR 1=1 --"}`)}, key)
	require.NoError(t, err)
	require.Empty(t, rows, "nothing comes before 1970")
}

// FuzzCursor: whatever a caller sends as cursor, Select answers rows or BAD-REQUEST, never
// a database error.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", "e30", "eyJsIjoiaXRlbXMiLCJ0IjowLCJrIjoiYSJ9", "%%%"} {
		f.Add(s)
	}
	db := seed(f, 3)
	for _, l := range []sqlpage.List{items, {Name: "items", From: "items", Columns: "id, created_at, kind", Time: "created_at", ID: "id::text"}} {
		f.Add(sqlpage.Encode(l.Name, time.Now(), "' OR 1=1 --", 0))
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, l := range []sqlpage.List{items, {Name: "items", From: "items", Columns: "id, created_at, kind", Time: "created_at", ID: "id::text"}} {
			_, _, err := sqlpage.Select(context.Background(), db, l, sqlpage.Where{}, sqlpage.Request{Limit: 2, Cursor: s}, key)
			if e, ok := apperr.As(err); err != nil && (!ok || e.Code != apperr.BadRequest) {
				t.Fatalf("cursor %q: %v", s, err)
			}
		}
	})
}
