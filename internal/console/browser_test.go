package console_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromium is Debian's package; .ci/run installs it when missing.
const chromium = "/usr/bin/chromium"

// TestBrowser walks the console in a real headless Chromium, in one browser session: an
// analyst logs in, finds the SEVERE alert in the queue, assigns it, takes it into review and
// flags it with a note, finds that in its history and in the audit log, reveals the IVMS101
// payload; a viewer then filters the queue (htmx, under the CSP) and is refused triage and
// reveal; with more than a page of everything, every page is visited; an admin adds an
// operator, changes their role and redelivers a FAILED callback. With CONSOLE_SCREENSHOTS set to
// a directory, it saves a PNG of every page there.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a real Chromium: one of the slow tests")
	}
	t.Parallel()
	if _, err := exec.LookPath(chromium); err != nil {
		t.Fatalf("the browser test needs Chromium at %s: apt-get install -y chromium (.ci/run does it): %v", chromium, err)
	}
	b := setup(t, false)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1440, 1000),
		// This machine's network is closed: without these Chromium waits on connections it
		// never gets.
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()

	shots := os.Getenv("CONSOLE_SCREENSHOTS")
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if shots == "" {
				return nil
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		})
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, actions...), what)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, "read "+sel)
		return s
	}
	login := func(name string) {
		t.Helper()
		run("log in as "+name,
			chromedp.Navigate(b.e.URL+"/console/alerts"),
			chromedp.WaitVisible(chromedp.CSS(`#password`)),
			shot("login"),
			chromedp.SendKeys(chromedp.CSS(`#name`), name),
			chromedp.SendKeys(chromedp.CSS(`#password`), b.passwords[name]),
			chromedp.Submit(chromedp.CSS(`#password`)),
			// The login page has an h1 too: wait for what only a logged-in page shows, or the
			// next navigation aborts the one the form started.
			chromedp.WaitVisible(chromedp.CSS(`form.who button`)),
		)
	}

	// The analyst: the queue, the alert, triage.
	login("analyst")
	run("the queue", chromedp.WaitVisible(chromedp.CSS(`a.level.severe`)), shot("alerts"))
	q := text("main")
	require.Contains(t, q, "SEVERE")
	require.Contains(t, q, "sanctioned entity")
	require.Contains(t, q, "Unreviewed")
	run("open the alert", chromedp.Click(chromedp.CSS(`a.level.severe`)), chromedp.WaitVisible(chromedp.CSS(`form[action$="/assign"] button`)))
	require.Contains(t, text("main"), b.alertID)
	run("assign to me", chromedp.Click(chromedp.CSS(`form[action$="/assign"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`form[action$="/assign"]`)))
	run("take into review", chromedp.SetValue(chromedp.CSS(`#status`), "In Review"),
		chromedp.Click(chromedp.CSS(`form[action$="/status"] button`)),
		chromedp.WaitReady(chromedp.CSS(`#status option[value="Flagged"]`)))
	run("flag without a note", chromedp.SetValue(chromedp.CSS(`#status`), "Flagged"),
		chromedp.Click(chromedp.CSS(`form[action$="/status"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.problem`)))
	require.Contains(t, text(".problem"), "Flagged needs a note")
	run("flag with a note", chromedp.SetValue(chromedp.CSS(`#status`), "Flagged"),
		chromedp.SendKeys(chromedp.CSS(`#status-note`), "Lazarus Group exposure: escalate to the MLRO"),
		chromedp.Click(chromedp.CSS(`form[action$="/status"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`ol.notes`)), shot("alert"))
	a := text("main")
	require.Contains(t, a, "Lazarus Group exposure: escalate to the MLRO")
	require.Contains(t, a, "In Review → Flagged")
	require.Contains(t, a, "nobody → analyst")

	run("the audit log", chromedp.Click(chromedp.CSS(`nav a[href="/console/audit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table`)), shot("audit"))
	audit := text("main")
	for _, s := range []string{"login", "assign", "In Review → Flagged", "note added", b.alertID} {
		require.Contains(t, audit, s)
	}
	require.NotContains(t, audit, "Lazarus Group exposure", "a note's words stay off the audit log")

	// The verification: masked, then revealed (audited).
	run("the verification", chromedp.Navigate(b.e.URL+"/console/verifications/"+b.verification),
		chromedp.WaitVisible(chromedp.CSS(`#ivms101-masked`)), shot("verification"))
	require.NotContains(t, text("main"), personName)
	run("reveal", chromedp.Click(chromedp.CSS(`form[action$="/reveal"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#ivms101`)), shot("verification-revealed"))
	require.Contains(t, text("#ivms101"), personName)
	run("other pages", chromedp.Navigate(b.e.URL+"/console/verifications"), chromedp.WaitVisible(chromedp.CSS(`table`)), shot("verifications"),
		chromedp.Navigate(b.e.URL+"/console/assessments"), chromedp.WaitVisible(chromedp.CSS(`table`)), shot("assessments"),
		chromedp.Navigate(b.e.URL+"/console/callbacks"), chromedp.WaitVisible(chromedp.CSS(`table`)), shot("callbacks"))
	run("audit of the reveal", chromedp.Navigate(b.e.URL+"/console/audit?action="+url.QueryEscape("reveal IVMS101")),
		chromedp.WaitVisible(chromedp.CSS(`table`)))
	require.Contains(t, text("main"), b.verification)

	// More than a page of everything: every list page as it looks in use.
	manyRows(t, b)
	run("the overview", chromedp.Navigate(b.e.URL+"/console/overview"), chromedp.WaitVisible(chromedp.CSS(`.cards`)), shot("overview"))
	require.Contains(t, text("main"), "Open alerts")
	run("the queue, full", chromedp.Navigate(b.e.URL+"/console/alerts?status=any"), chromedp.WaitVisible(chromedp.CSS(`a.level.severe`)), shot("alerts-many"))
	run("the queue, page 2 of a filter", chromedp.Click(chromedp.CSS(`a[rel=next]`)), chromedp.WaitVisible(chromedp.CSS(`a[rel=prev]`)))
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Contains(t, loc, "page=2")
	require.Contains(t, loc, "status=any", "the filter kept in the next page's link")
	for _, p := range []struct{ path, wait, name string }{
		{"/console/verifications", "table", "verifications-many"},
		{"/console/assessments", "table", "assessments-many"},
		{"/console/screenings", "table", "screenings"},
		{"/console/callbacks", "table", "callbacks-many"},
		{"/console/peer-messages", "table", "peer-messages"},
		{"/console/counterparties", "table", "counterparties"},
		{"/console/audit", "table", "audit-many"},
		{"/console/assessments/" + b.requestID, "h1", "assessment"},
	} {
		run("the page "+p.path, chromedp.Navigate(b.e.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.wait)), shot(p.name))
		require.NotContains(t, text("main"), personName, p.path)
	}
	require.Contains(t, text("main"), b.requestID)
	run("log out", chromedp.Click(chromedp.CSS(`.who button`)), chromedp.WaitVisible(chromedp.CSS(`#password`)))

	// The viewer: reads, filters with htmx, is refused triage and reveal.
	login("viewer")
	run("the queue, any status", chromedp.Navigate(b.e.URL+"/console/alerts?status=any"), chromedp.WaitVisible(chromedp.CSS(`a.level.severe`)))
	_, err = chromedp.Run(ctx, chromedp.Evaluate[any](`(() => { const s = document.querySelector('select[name=source]');
		s.value = 'MONITORING'; s.dispatchEvent(new Event('change', {bubbles: true})); })()`))
	require.NoError(t, err)
	run("filter by source through htmx (no monitoring alert)", chromedp.WaitVisible(chromedp.CSS(`p.empty`)))
	loc, err = chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	require.Contains(t, loc, "source=MONITORING", "htmx pushed the filtered URL")
	require.True(t, strings.Contains(loc, "status=any"), loc)
	run("the alert as a viewer", chromedp.Navigate(b.e.URL+"/console/alerts/"+b.alertID), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	forms, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main form').length`))
	require.NoError(t, err)
	require.Zero(t, forms, "no triage form for a viewer")
	run("the verification as a viewer", chromedp.Navigate(b.e.URL+"/console/verifications/"+b.verification),
		chromedp.WaitVisible(chromedp.CSS(`#ivms101-masked`)))
	require.NotContains(t, text("main"), "Reveal IVMS101")
	run("the operators page", chromedp.Navigate(b.e.URL+"/console/operators"), chromedp.WaitVisible(chromedp.CSS(`.problem`)), shot("forbidden"))
	require.Contains(t, text(".problem"), "This needs the admin role")
	run("log out", chromedp.Click(chromedp.CSS(`.who button`)), chromedp.WaitVisible(chromedp.CSS(`#password`)))

	// The admin: operators, and a FAILED delivery redelivered.
	login("admin")
	run("the operators", chromedp.Navigate(b.e.URL+"/console/operators"), chromedp.WaitVisible(chromedp.CSS(`#new-name`)), shot("operators"))
	run("add an operator", chromedp.SendKeys(chromedp.CSS(`#new-name`), "erin"), chromedp.SetValue(chromedp.CSS(`#new-role`), "analyst"),
		chromedp.Submit(chromedp.CSS(`#new-name`)), chromedp.WaitVisible(chromedp.CSS(`#new-password`)), shot("operator-added"))
	require.GreaterOrEqual(t, len(text("#new-password")), 20)
	run("make them a viewer", chromedp.SetValue(chromedp.CSS(`#role-erin`), "viewer"),
		chromedp.Click(chromedp.CSS(`form[action="/console/operators/erin/role"] button`)), chromedp.WaitVisible(chromedp.CSS(`p.ok`)))
	require.Contains(t, text("p.ok"), "Role changed")
	run("the FAILED callbacks", chromedp.Navigate(b.e.URL+"/console/callbacks?status=FAILED"),
		chromedp.WaitVisible(chromedp.CSS(`form.bulk button`)), shot("callbacks-admin"))
	run("redeliver one", chromedp.Click(chromedp.CSS(`form[action$="/redeliver"] button`)), chromedp.WaitVisible(chromedp.CSS(`p.ok`)))
	require.Contains(t, text("p.ok"), "1 redelivered")
	run("the FAILED peer messages", chromedp.Navigate(b.e.URL+"/console/peer-messages?status=FAILED"),
		chromedp.WaitVisible(chromedp.CSS(`form.bulk button`)), shot("peer-messages-admin"))
	run("the audit of it all", chromedp.Navigate(b.e.URL+"/console/audit?operator=admin"), chromedp.WaitVisible(chromedp.CSS(`table`)))
	audit = text("main")
	for _, s := range []string{"operator added", "role changed", "analyst → viewer", "redeliver"} {
		require.Contains(t, audit, s)
	}
}
