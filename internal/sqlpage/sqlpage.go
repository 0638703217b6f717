// Package sqlpage builds the filtered, paginated listings every list route answers: AND-ed
// conditions with numbered placeholders, a count of all matches, and one page of rows.
package sqlpage

import (
	"context"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
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

func (w *Where) clause() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// Page counts the rows of table matching w and selects columns of one page of them, in
// order, into dest (a pointer to a slice). It returns the count of all matches.
func Page(ctx context.Context, db sqlx.QueryerContext, dest any, table, columns, order string, w Where, limit, offset int) (int, error) {
	var total int
	if err := sqlx.GetContext(ctx, db, &total, `SELECT count(*) FROM `+table+w.clause(), w.args...); err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	q := fmt.Sprintf(`SELECT %s FROM %s%s ORDER BY %s LIMIT %d OFFSET %d`, columns, table, w.clause(), order, limit, offset)
	if err := sqlx.SelectContext(ctx, db, dest, q, w.args...); err != nil {
		return 0, fmt.Errorf("list %s: %w", table, err)
	}
	return total, nil
}
