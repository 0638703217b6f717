// Package sqlpage builds the filtered, paginated listings every list route answers: AND-ed
// conditions with numbered placeholders, one page of rows in the list's order, a count that
// stays cheap however many rows match, and the opaque cursor of the next page.
//
// A page costs the same at ten million rows as at ten: it is read from an index in the list's
// order (newest first, ties by id), starting after the previous page's last row (keyset
// pagination) rather than after skipping offset rows; and the count stops at ExactUpTo+1 rows,
// past which the total is the planner's estimate, marked as such.
package sqlpage

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// Limits of a page request, the same for every list.
const (
	// MaxOffset caps offset: skipping rows reads them all, so an offset deep into a large list
	// is slow; deeper pages are reached by cursor.
	MaxOffset = 10_000
	// ExactUpTo is how many matches are counted exactly without being asked (count=exact): a
	// count of up to ExactUpTo+1 rows, read from an index, costs a few milliseconds.
	ExactUpTo = 10_000
)

// Where accumulates AND-ed conditions; each holds one %d for its placeholder number.
type Where struct {
	conds []string
	args  []any
}

// Add appends cond (such as "status = $%d") with its argument.
func (w *Where) Add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, fmt.Sprintf(cond, len(w.args)))
}

// SQL returns the conditions as a WHERE clause (empty when there are none) with their
// arguments, for a statement other than a page (a bulk update over a list's filters).
func (w Where) SQL() (string, []any) { return w.clause(), w.args }

// Empty reports whether no condition was added: the clause would select every row.
func (w Where) Empty() bool { return len(w.conds) == 0 }

func (w Where) clause() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// List describes one listing: where its rows come from and its order, newest Time first and
// ties by ascending ID, which must be unique. An index on (Time DESC, ID), and one on
// (filter, Time DESC, ID) for each filter, make every page an index range scan.
type List struct {
	// Name identifies the list in its cursors, so that a cursor of one list is refused by
	// another rather than read as a position in it.
	Name string
	// From is the table, or join, the rows come from.
	From string
	// CountFrom, when set, is what the count reads instead of From: the join's driving table
	// alone, when the conditions name none of the others and a foreign key gives each row
	// exactly one partner, so the count is an index-only scan rather than a lookup a row.
	CountFrom string
	// Columns are what each row selects.
	Columns string
	// Time and ID are the sort key's column expressions.
	Time, ID string
	// UUIDKey says ID is a uuid column, so that a cursor's id is checked to be one before it
	// reaches SQL.
	UUIDKey bool
	// Rank, when set, is an integer expression the list sorts by first, smallest first, and
	// then by the oldest Time, ties by ascending ID: a work queue's order (the console's alerts,
	// most severe and oldest first) rather than a log's. An index on (Rank, Time, ID), the
	// expression written exactly as here, makes every page an index range scan.
	Rank string
}

// order is l's ORDER BY, and the condition that selects the rows after the cursor c, whose
// placeholders are numbered from n: the cursor's rank (when l has one), time and id.
func (l List) order(n int) (by, after string) {
	if l.Rank != "" {
		// A row comparison, which an index on (Rank, Time, ID) serves as one range.
		return fmt.Sprintf("%s, %s, %s", l.Rank, l.Time, l.ID),
			fmt.Sprintf("(%s, %s, %s) > ($%d, $%d, $%d)", l.Rank, l.Time, l.ID, n, n+1, n+2)
	}
	// (Time, ID) after the cursor in (Time DESC, ID) order. Time <= $n stands alone so it
	// bounds the index range scan; the OR only drops the few rows tied with the cursor.
	return fmt.Sprintf("%s DESC, %s", l.Time, l.ID),
		fmt.Sprintf("%[1]s <= $%[3]d AND (%[1]s < $%[3]d OR %[2]s > $%[4]d)", l.Time, l.ID, n, n+1)
}

// Request is what a caller asked of a page. Cursor and Offset are never both set (the API
// refuses that); Offset is at most MaxOffset.
type Request struct {
	Limit  int
	Offset int
	// Cursor is the Next of an earlier page of the same list; empty for the first page.
	Cursor string
	// Exact asks for an exact Total however many rows match (count=exact): a scan of them all.
	Exact bool
}

// Page frames one page of rows: the total, where the page starts, and how to ask for the
// next one.
type Page struct {
	// Total is how many rows match: exact when Estimated is false.
	Total int
	// Estimated says Total is the planner's estimate: more than ExactUpTo rows match and no
	// exact count was asked for.
	Estimated bool
	// Offset is how many matching rows come before this page: the request's offset, or as
	// counted while following cursors.
	Offset int
	// Next is the cursor of the following page; empty on the last one.
	Next string
	// after is the cursor that continues after the first n rows of the page (Cut).
	after func(n int) string
}

// Cut returns p for its first n rows only, when a caller stops the page there (the API does,
// to bound an answer's bytes): Next continues with row n+1. Cut with n at least the page's
// length returns p as it is.
func (p Page) Cut(n int) Page {
	if p.after == nil || n < 1 {
		return p
	}
	if next := p.after(n); next != "" {
		p.Next = next
	}
	return p
}

// Key is a row's position in its list's order; Rank only for a list with one.
type Key struct {
	Rank int
	Time time.Time
	ID   string
}

// Select reads one page of l, rows matching w, as r asks, into []T; key gives a row's sort
// key (for the next page's cursor). A cursor that does not decode, or was made for another
// list, is BAD-REQUEST naming cursor.
func Select[T any](ctx context.Context, db sqlx.QueryerContext, l List, w Where, r Request, key func(T) Key) ([]T, Page, error) {
	p := Page{Offset: r.Offset}
	page := w
	page.conds, page.args = append([]string(nil), w.conds...), append([]any(nil), w.args...)
	if r.Cursor != "" {
		c, err := decodeCursor(r.Cursor, l)
		if err != nil {
			return nil, p, err
		}
		p.Offset = c.Offset
		if l.Rank != "" {
			page.args = append(page.args, c.Rank)
		}
		page.args = append(page.args, c.Time, c.ID)
		first := len(page.args) - 1
		if l.Rank != "" {
			first--
		}
		_, after := l.order(first)
		page.conds = append(page.conds, after)
	}
	by, _ := l.order(0)
	q := fmt.Sprintf(`SELECT %s FROM %s%s ORDER BY %s LIMIT %d OFFSET %d`,
		l.Columns, l.From, page.clause(), by, r.Limit+1, r.Offset)
	rows := []T{} // an empty page is [], not null
	if err := selectContext(ctx, db, &rows, q, page.args...); err != nil {
		return nil, p, fmt.Errorf("list %s: %w", l.Name, err)
	}
	offset := p.Offset
	after := func(n int) string {
		k := key(rows[n-1])
		return encodeCursor(cursor{List: l.Name, Rank: k.Rank, Time: k.Time, ID: k.ID, Offset: offset + n})
	}
	if len(rows) > r.Limit {
		rows = rows[:r.Limit]
		p.Next = after(len(rows))
	}
	p.after = func(n int) string {
		if n >= len(rows) {
			return ""
		}
		return after(n)
	}
	var err error
	if p.Total, p.Estimated, err = count(ctx, db, l, w, r.Exact); err != nil {
		return nil, p, err
	}
	return rows, p, nil
}

// count counts the rows of l matching w: exactly when asked, or when at most ExactUpTo match;
// otherwise it returns the planner's estimate (never below ExactUpTo+1) and true.
func count(ctx context.Context, db sqlx.QueryerContext, l List, w Where, exact bool) (int, bool, error) {
	var n int
	from := cmp.Or(l.CountFrom, l.From)
	q := `SELECT count(*) FROM ` + from + w.clause()
	if !exact {
		q = fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM %s%s LIMIT %d) m`, from, w.clause(), ExactUpTo+1)
	}
	if err := getContext(ctx, db, &n, q, w.args...); err != nil {
		return 0, false, fmt.Errorf("count %s: %w", l.Name, err)
	}
	if exact || n <= ExactUpTo {
		return n, false, nil
	}
	var plan []byte
	if err := sqlx.GetContext(ctx, db, &plan, `EXPLAIN (FORMAT JSON) SELECT 1 FROM `+from+w.clause(), w.args...); err != nil {
		return 0, false, fmt.Errorf("estimate %s: %w", l.Name, err)
	}
	var explained []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := json.Unmarshal(plan, &explained); err != nil || len(explained) != 1 {
		return 0, false, fmt.Errorf("estimate %s: read plan: %v", l.Name, err)
	}
	return max(int(explained[0].Plan.Rows), ExactUpTo+1), true, nil
}

// Statement is one SQL statement a list ran, with its arguments.
type Statement struct {
	SQL  string
	Args []any
}

// Recording collects the statements lists run under a context from Record: the plan test
// EXPLAINs exactly the SQL the routes run.
type Recording struct {
	mu         sync.Mutex
	statements []Statement
}

// Statements returns what was recorded so far.
func (r *Recording) Statements() []Statement {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Statement(nil), r.statements...)
}

type recordingKey struct{}

// Record returns a context under which every statement Select runs is also appended to the
// returned Recording.
func Record(ctx context.Context) (context.Context, *Recording) {
	r := &Recording{}
	return context.WithValue(ctx, recordingKey{}, r), r
}

func record(ctx context.Context, q string, args []any) {
	if r, ok := ctx.Value(recordingKey{}).(*Recording); ok {
		r.mu.Lock()
		r.statements = append(r.statements, Statement{SQL: q, Args: args})
		r.mu.Unlock()
	}
}

func selectContext(ctx context.Context, db sqlx.QueryerContext, dest any, q string, args ...any) error {
	record(ctx, q, args)
	return sqlx.SelectContext(ctx, db, dest, q, args...)
}

func getContext(ctx context.Context, db sqlx.QueryerContext, dest any, q string, args ...any) error {
	record(ctx, q, args)
	return sqlx.GetContext(ctx, db, dest, q, args...)
}
