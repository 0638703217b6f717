package api

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/config"
)

// pageParams are the query parameters every list takes: where the page starts and its size
// (page).
var pageParams = []string{"limit", "cursor", "offset", "count"}

// listQuery is what a list route takes: its own filters (fromDate and toDate among them where
// it reads dateRange) and the page's.
func listQuery(filters ...string) gin.HandlerFunc {
	return takes(slices.Concat(filters, pageParams)...)
}

// takes refuses a request naming a query parameter other than names (exactly, in this case):
// 400 BAD-REQUEST naming each unknown one and the nearest it may have meant. A misspelt filter
// (?txhash=) would otherwise be ignored and the answer list every row.
func takes(names ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var unknown []string
		for name := range c.Request.URL.Query() {
			if !slices.Contains(names, name) {
				unknown = append(unknown, name)
			}
		}
		if len(unknown) == 0 {
			c.Next()
			return
		}
		sort.Strings(unknown)
		e := &apperr.Error{Code: apperr.BadRequest}
		msgs := make([]string, 0, len(unknown))
		if len(unknown) > 20 { // a handful is a typo; the rest is noise that need not be echoed
			unknown = unknown[:20]
		}
		for _, name := range unknown {
			e.Problems = append(e.Problems, apperr.Problem{Field: fmt.Sprint(apperr.Clip(name)), Rule: "unknown"})
			msg := apperr.New(apperr.BadRequest, "%s: not a query parameter of this route", name).Message
			if len(names) > 0 {
				msg += " (did you mean " + config.Nearest(name, names) + "?)"
			}
			msgs = append(msgs, msg)
		}
		if len(names) == 0 {
			e.Message = strings.Join(msgs, "; ") + "; it takes none"
		} else {
			e.Message = strings.Join(msgs, "; ") + "; it takes " + strings.Join(names, ", ")
		}
		if len(unknown) > 3 { // each is named in problems; the message stays short
			e.Message = fmt.Sprintf("%d query parameters this route does not take, the first %s", len(unknown), msgs[0])
		}
		abort(c, http.StatusBadRequest, errorBody{Code: e.Code, Message: e.Message, Problems: e.Problems})
	}
}
