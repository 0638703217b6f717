package console

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

func withOperator(ctx context.Context, op Operator) context.Context {
	return context.WithValue(ctx, ctxKey{}, op)
}

// LoginView is the login page.
type LoginView struct {
	Frame
	Name, Next string
}

// safeNext keeps a post-login destination inside the console: never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") ||
		strings.HasPrefix(next, "/console/login") {
		return "/console/alerts"
	}
	return next
}

func (c *Console) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", LoginView{Frame: Frame{Title: "Log in"}, Next: safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) handleLogin(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(strings.TrimSpace(r.PostFormValue("name")))
	password := r.PostFormValue("password")
	next := safeNext(r.PostFormValue("next"))
	ip := clientIP(r)
	view := LoginView{Frame: Frame{Title: "Log in"}, Name: name, Next: next}
	if len(name) > 63 {
		name = name[:63]
	}
	if !c.limits.allow(name, ip) {
		c.audit.Record(r.Context(), Entry{Operator: name, Action: ActionLoginFailed, Detail: "rate limited", IP: ip}) //nolint:errcheck // best effort while under attack
		view.Error = "Too many login attempts. Wait a minute and try again."
		w.Header().Set("Retry-After", "60")
		c.render(w, r, http.StatusTooManyRequests, "login", view)
		return
	}
	op, err := c.operators.Authenticate(r.Context(), name, password)
	if errors.Is(err, errBadLogin) {
		if err := c.audit.Record(r.Context(), Entry{Operator: name, Action: ActionLoginFailed, IP: ip}); err != nil {
			c.fail(w, r, err)
			return
		}
		view.Error = "Wrong name or password."
		c.render(w, r, http.StatusUnauthorized, "login", view)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sm := c.sessions(r)
	// A new token at login: a token planted before it (session fixation) is worth nothing.
	if err := sm.RenewToken(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	sm.Put(r.Context(), operatorKey, op.Name)
	if err := c.audit.Record(r.Context(), Entry{Operator: op.Name, Action: ActionLogin, IP: ip}); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) handleLogout(w http.ResponseWriter, r *http.Request) {
	op := current(r.Context())
	if err := c.sessions(r).Destroy(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.audit.Record(r.Context(), Entry{Operator: op.Name, Action: ActionLogout, IP: clientIP(r)}); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}
