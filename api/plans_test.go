package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/bench"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType    string     `json:"Node Type"`
	Relation    string     `json:"Relation Name"`
	Index       string     `json:"Index Name"`
	IndexCond   string     `json:"Index Cond"`
	RecheckCond string     `json:"Recheck Cond"`
	Filter      string     `json:"Filter"`
	Rows        float64    `json:"Plan Rows"`
	Plans       []planNode `json:"Plans"`
}

func (n planNode) walk(f func(n, parent planNode)) {
	for _, c := range n.Plans {
		f(c, n)
		c.walk(f)
	}
}

func (n planNode) String() string {
	var b strings.Builder
	var line func(n planNode, depth int)
	line = func(n planNode, depth int) {
		fmt.Fprintf(&b, "%s%s %s %s rows=%.0f", strings.Repeat("  ", depth), n.NodeType, n.Relation, n.Index, n.Rows)
		if n.IndexCond != "" {
			fmt.Fprintf(&b, " index cond %s", n.IndexCond)
		}
		if n.Filter != "" {
			fmt.Fprintf(&b, " filter %s", n.Filter)
		}
		b.WriteString("\n")
		for _, c := range n.Plans {
			line(c, depth+1)
		}
	}
	line(n, 0)
	return b.String()
}

// sortedRowsAtMost is the largest sort a page may do: the handful of rows an id filter
// (txHash, requestId, verificationUuid) matches, never all rows matching a filter.
const sortedRowsAtMost = 100

// TestEveryListFilterUsesAnIndex EXPLAINs the statements each list route runs, first page and
// the page after it by cursor, with each filter the route offers, on tables holding tens of
// thousands of rows of realistic spread (bench.Load: the planner prefers an index at this
// size exactly when it would at millions): no page may scan a whole table or sort every
// match, each filter must be an index condition, and the count may read at most its bound,
// from an index alone.
func TestEveryListFilterUsesAnIndex(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{APIOnly: true})
	const n = 30_000
	require.NoError(t, bench.Load(context.Background(), e.DB, n, io.Discard))
	loaded := map[string]bool{"verifications": true, "kyt_results": true, "kyt_alerts": true, "screening_results": true, "callbacks": true,
		"peer_messages": true}

	explain := func(t *testing.T, s sqlpage.Statement) planNode {
		t.Helper()
		var out []byte
		require.NoError(t, e.DB.Get(&out, "EXPLAIN (FORMAT JSON) "+s.SQL, s.Args...))
		var plans []struct{ Plan planNode }
		require.NoError(t, json.Unmarshal(out, &plans))
		require.Len(t, plans, 1)
		// The plan's root is the statement; walk sees its children, so wrap it.
		return planNode{Plans: []planNode{plans[0].Plan}}
	}
	get := func(t *testing.T, target string) (sqlpage.Statement, sqlpage.Statement, *string) {
		t.Helper()
		ctx, rec := sqlpage.Record(context.Background())
		req := httptest.NewRequestWithContext(ctx, "GET", target, nil)
		req.Header.Set("Authorization", "Bearer "+et.APIKey)
		w := httptest.NewRecorder()
		e.App.Handler.ServeHTTP(w, req)
		require.Equal(t, 200, w.Code, "%s", w.Body)
		var p struct {
			Data []json.RawMessage
			Next *string
		}
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
		require.NotEmpty(t, p.Data, "the case must match rows to test anything")
		st := rec.Statements()
		require.Len(t, st, 2, "a page, then its count")
		return st[0], st[1], p.Next
	}
	checkPage := func(t *testing.T, s sqlpage.Statement, indexed []string) {
		t.Helper()
		plan := explain(t, s)
		var conds string
		plan.walk(func(n, _ planNode) {
			require.False(t, n.NodeType == "Seq Scan" && loaded[n.Relation], "a page scans %s:\n%s\n%s", n.Relation, s.SQL, plan)
			require.False(t, strings.HasSuffix(n.NodeType, "Sort") && n.Rows > sortedRowsAtMost, "a page sorts every match:\n%s\n%s", s.SQL, plan)
			conds += n.IndexCond + " " + n.RecheckCond + " "
		})
		for _, col := range indexed {
			require.Contains(t, conds, col, "%s is not an index condition:\n%s\n%s", col, s.SQL, plan)
		}
	}
	checkCount := func(t *testing.T, s sqlpage.Statement) {
		t.Helper()
		plan := explain(t, s)
		require.Contains(t, s.SQL, fmt.Sprintf("LIMIT %d", sqlpage.ExactUpTo+1), "the count is bounded")
		plan.walk(func(n, _ planNode) {
			// Under the bound's Limit, a scan of the table that keeps at least half its rows
			// reads at most twice the bound; one that keeps fewer could read all of it.
			if n.NodeType == "Seq Scan" && loaded[n.Relation] {
				var rows float64
				require.NoError(t, e.DB.Get(&rows, `SELECT reltuples FROM pg_class WHERE oid = $1::regclass`, n.Relation))
				require.GreaterOrEqual(t, 2*n.Rows, rows, "the count scans %s for rare rows:\n%s\n%s", n.Relation, s.SQL, plan)
			}
			require.False(t, strings.HasSuffix(n.NodeType, "Sort"), "the count sorts:\n%s\n%s", s.SQL, plan)
			// Counting up to the bound from an index alone costs microseconds a row; visiting
			// the table for each match (an index or bitmap heap scan) costs a random read each.
			heap := n.NodeType == "Index Scan" || n.NodeType == "Bitmap Heap Scan"
			require.False(t, heap && loaded[n.Relation] && n.Rows > sortedRowsAtMost, "the count reads %s row by row:\n%s\n%s", n.Relation, s.SQL, plan)
		})
	}
	for _, c := range bench.ListCases(n) {
		t.Run(c.String(), func(t *testing.T) {
			page, count, next := get(t, c.String())
			checkPage(t, page, c.Indexed)
			checkCount(t, count)
			if next == nil {
				return
			}
			sep := "?"
			if c.Query != "" {
				sep = "&"
			}
			page, _, _ = get(t, c.String()+sep+"cursor="+*next)
			checkPage(t, page, c.Indexed)
		})
	}
}
