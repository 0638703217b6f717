package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// page is one page's template set: the layout and the page's own content.
type page struct{ t *template.Template }

var funcs = template.FuncMap{
	"ago": ago,
	"utc": utc,
	"ts":  func(s string) time.Time { t, _ := time.Parse(jsontime.Layout, s); return t },
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"lower": strings.ToLower,
}

func parsePages() (map[string]*page, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*page{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		out[name] = &page{t}
	}
	return out, nil
}

// Frame is what every page's layout shows: the title, who is logged in and what they may do.
// Each page's view struct embeds it.
type Frame struct {
	Title string
	Nav   string
	Me    string
	Role  Role
	// CanTriage and CanAdmin decide which forms a page shows; the routes check again.
	CanTriage, CanAdmin bool
	// Error is shown above the page's content (a refused change).
	Error string
}

func frame(r *http.Request, title, nav string) Frame {
	op := current(r.Context())
	return Frame{Title: title, Nav: nav, Me: op.Name, Role: op.Role, CanTriage: op.Role.Can(Analyst), CanAdmin: op.Role.Can(Admin)}
}

// render writes the page named name with its view, status 200 unless the view says otherwise.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, view any) {
	p, ok := c.pages[name]
	if !ok {
		c.fail(w, r, fmt.Errorf("no console page %q", name))
		return
	}
	var b bytes.Buffer
	if err := p.t.ExecuteTemplate(&b, "layout", view); err != nil {
		c.fail(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes()) //nolint:errcheck // the client went away
}

// ErrorView is the page of a failure: what went wrong, in words safe to show.
type ErrorView struct {
	Frame
	Status  int
	Message string
}

// fail answers an error: a domain error (apperr) by its code's status and safe message, any
// other as a 500 whose detail goes to the log only.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong on our side. The details are in the enclave's log."
	var te errTransition
	if e, ok := apperr.As(err); ok {
		status, msg = statusOf(e.Code), e.Message
	} else if errors.As(err, &te) {
		status, msg = http.StatusConflict, te.msg
	} else {
		c.log.ErrorContext(r.Context(), "console", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	c.render(w, r, status, "error", ErrorView{Frame: frame(r, http.StatusText(status), ""), Status: status, Message: msg})
}

func statusOf(code string) int {
	switch code {
	case apperr.NotFound, apperr.NotFoundVerification:
		return http.StatusNotFound
	case apperr.BadRequest, apperr.MissingVerificationUUID:
		return http.StatusBadRequest
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// refuse answers 403 to an operator whose role is not enough.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, op Operator, need Role) {
	r = r.WithContext(withOperator(r.Context(), op))
	c.render(w, r, http.StatusForbidden, "error", ErrorView{Frame: frame(r, "Forbidden", ""), Status: http.StatusForbidden,
		Message: fmt.Sprintf("This needs the %s role; you are %s.", need, op.Role)})
}

func notFound(what string) error { return apperr.New(apperr.NotFound, "%s is not found", what) }

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	if d < -time.Minute { // a next attempt
		return "in " + strings.TrimSuffix(ago(time.Now().Add(-d)), " ago")
	}
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d d ago", int(d.Hours()/24))
	}
}

func utc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// PageSize is how many rows a list page shows.
const PageSize = 50

// Pager is a list's paging: where the page stands and links to its neighbours, the filters
// kept in each link.
type Pager struct {
	Page, Pages, Total int
	From, To           int
	Prev, Next         string
}

// pageOf reads ?page= (1 on anything else) and returns the page and its offset.
func pageOf(q url.Values) (int, int) {
	p, err := strconv.Atoi(q.Get("page"))
	if err != nil || p < 1 {
		p = 1
	}
	// Offsets stop at sqlpage.MaxOffset: deeper rows are reached by narrowing the filters.
	p = min(p, sqlpage.MaxOffset/PageSize+1)
	return p, (p - 1) * PageSize
}

func pager(base string, q url.Values, pg, total, shown int) Pager {
	p := Pager{Page: pg, Total: total, Pages: max(1, (total+PageSize-1)/PageSize)}
	if shown > 0 {
		p.From, p.To = (pg-1)*PageSize+1, (pg-1)*PageSize+shown
	}
	link := func(n int) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "page" && len(vs) > 0 && vs[0] != "" {
				v.Set(k, vs[0])
			}
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	if pg > 1 {
		p.Prev = link(pg - 1)
	}
	if pg < p.Pages {
		p.Next = link(pg + 1)
	}
	return p
}

// csvURL is the list's own URL with .csv: the same filters, every page.
func csvURL(base string, q url.Values) string {
	v := url.Values{}
	for k, vs := range q {
		if k != "page" && len(vs) > 0 && vs[0] != "" {
			v.Set(k, vs[0])
		}
	}
	if len(v) == 0 {
		return base + ".csv"
	}
	return base + ".csv?" + v.Encode()
}

// Option is one choice of a filter's select.
type Option struct {
	Value, Label string
	Selected     bool
}

func options(cur string, pairs ...string) []Option {
	out := make([]Option, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Option{Value: pairs[i], Label: pairs[i+1], Selected: pairs[i] == cur})
	}
	return out
}
