package console

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/scs/postgresstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jmoiron/sqlx"
	"golang.org/x/time/rate"

	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/internal/verification"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Session lifetimes (DESIGN.md §14): a session ends after 30 minutes without a request, and
// 12 hours after its login whatever happens.
const (
	IdleTimeout = 30 * time.Minute
	Lifetime    = 12 * time.Hour
)

// Deps are the domain services the console reads and acts through — the same the JSON API
// uses — and the database of its own tables.
type Deps struct {
	Log           *slog.Logger
	DB            *sqlx.DB
	Verifications *verification.Service
	Assessments   *kytjob.Service
	Screenings    *screening.Service
	Callbacks     *callback.Service
	Exchange      *exchange.Service
	// Directory tells each counterparty's health, as GET /v1/vasps does.
	Directory *exchange.Directory
	// Sealer seals analysts' notes at rest with the data keyset, as payloads are.
	Sealer *seal.Sealer
	// Peers are the counterparties of the peers file; their secrets are never shown.
	Peers []config.Peer
}

// Console is the operator console as one http.Handler, mounted under /console.
type Console struct {
	d         Deps
	log       *slog.Logger
	operators *Operators
	audit     *Audit
	triage    *Triages
	store     *postgresstore.PostgresStore
	// secure and plain manage the same sessions; plain writes its cookie without Secure, for
	// a browser on this machine talking plain HTTP to a loopback address.
	secure, plain *scs.SessionManager
	pages         map[string]*page
	limits        limiter
	handler       http.Handler
}

// New builds the console.
func New(d Deps) (*Console, error) {
	c := &Console{d: d, log: d.Log, operators: NewOperators(d.DB), audit: NewAudit(d.DB)}
	if d.Sealer == nil {
		return nil, errors.New("console: Deps.Sealer is required: notes are sealed at rest")
	}
	c.triage = &Triages{db: d.DB, audit: c.audit, seal: d.Sealer}
	// Expired sessions are deleted every 5 minutes by each replica: a cheap indexed DELETE.
	c.store = postgresstore.NewWithConfig(d.DB.DB, postgresstore.Config{TableName: "console_sessions", CleanUpInterval: 5 * time.Minute})
	for _, secure := range []bool{true, false} {
		sm := scs.New()
		sm.Store = c.store
		sm.Lifetime, sm.IdleTimeout = Lifetime, IdleTimeout
		sm.Cookie.Name = "enclave_console"
		sm.Cookie.Path = "/console"
		sm.Cookie.HttpOnly = true
		sm.Cookie.SameSite = http.SameSiteStrictMode
		sm.Cookie.Secure = secure
		sm.Cookie.Persist = false // a browser session cookie; the server ends it anyway
		sm.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) { c.fail(w, r, err) }
		if secure {
			c.secure = sm
		} else {
			c.plain = sm
		}
	}
	var err error
	if c.pages, err = parsePages(); err != nil {
		return nil, err
	}
	c.limits = limiter{perAccount: map[string]*rate.Limiter{}, perIP: map[string]*rate.Limiter{}}
	c.handler = c.routes()
	return c, nil
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.handler.ServeHTTP(w, r) }

// Close stops the sessions' periodic cleanup.
func (c *Console) Close() { c.store.StopCleanup() }

// sessions returns the session manager for r: cookies are Secure except for a loopback host.
func (c *Console) sessions(r *http.Request) *scs.SessionManager {
	if r.TLS == nil && loopback(r.Host) {
		return c.plain
	}
	return c.secure
}

func loopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientIP is the peer's address. X-Forwarded-For is not trusted: a proxy in front of the
// enclave would make every login share its address, which the per-account limit still covers.
func clientIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// staticFiles serves the embedded CSS and htmx, cached for a day.
func staticFiles() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embed above guarantees the directory
	}
	fsrv := http.StripPrefix("/console/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fsrv.ServeHTTP(w, r)
	})
}

// limiter bounds login attempts per account (5 at once, then one every 12 seconds) and per
// client address (30 at once, then one every 2 seconds: an office behind one address logs in
// together). It is kept in memory, so each replica counts on its own.
type limiter struct {
	mu                sync.Mutex
	perAccount, perIP map[string]*rate.Limiter
	// now is time.Now; a test freezes it, so a machine slow enough to spread five bcrypt
	// checks over 12 s does not refill the budget under it.
	now func() time.Time
}

const maxLimiters = 10000

// allow reports whether a login attempt for account from ip may proceed; both budgets are spent.
func (l *limiter) allow(account, ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	get := func(m map[string]*rate.Limiter, k string, every time.Duration, burst int) *rate.Limiter {
		lim, ok := m[k]
		if !ok {
			if len(m) >= maxLimiters { // bounded memory: forget everyone, rather than grow
				clear(m)
			}
			lim = rate.NewLimiter(rate.Every(every), burst)
			m[k] = lim
		}
		return lim
	}
	a, i := get(l.perAccount, account, 12*time.Second, 5), get(l.perIP, ip, 2*time.Second, 30)
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	okA, okI := a.AllowN(now, 1), i.AllowN(now, 1)
	return okA && okI
}

// operatorKey is where the session keeps the operator's name.
const operatorKey = "operator"

type ctxKey struct{}

// current is the operator a request is made by, set by need.
func current(ctx context.Context) Operator {
	op, _ := ctx.Value(ctxKey{}).(Operator)
	return op
}

// need wraps h so that only a logged-in, enabled operator of at least role may reach it; others
// are sent to the login page (GET) or refused.
func (c *Console) need(role Role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sm := c.sessions(r)
		name := sm.GetString(r.Context(), operatorKey)
		if name == "" {
			c.toLogin(w, r)
			return
		}
		op, err := c.operators.Find(r.Context(), name)
		if errors.Is(err, ErrNoOperator) || (err == nil && op.DisabledAt.Valid) {
			sm.Destroy(r.Context()) //nolint:errcheck // the session is gone either way
			c.toLogin(w, r)
			return
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if !op.Role.Can(role) {
			c.refuse(w, r, op, role)
			return
		}
		h(w, r.WithContext(withOperator(r.Context(), op)))
	})
}

// toLogin sends the browser to the login page, coming back to the page asked for.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	next := "/console/alerts"
	if r.Method == http.MethodGet {
		next = r.URL.RequestURI()
	}
	target := "/console/login?next=" + urlQueryEscape(next)
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// secureHeaders sets the headers every console answer carries: a CSP that allows no inline
// script or style and no framing, no MIME sniffing, no referrer, and no caching of pages.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
