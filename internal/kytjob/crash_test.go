package kytjob_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/dbtest"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/internal/openapitest"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/webhook"
)

// The crash tests run the enclave in a child process (et.StartChild) and kill it with SIGKILL
// at a chosen step of the pipeline; a second child must then finish every assessment.

// crashedJobsRescuable is how long after a crash River may rescue the job the dead child left
// running: not before RescueAfter (2 s) nor before the job's own timeout (an assessment's or a
// screening's run 2 × CHAINALYSIS_TIMEOUT + 5 s = 6 s, a delivery's the callback timeout + 5 s
// = 6 s), with 1 s to spare.
const crashedJobsRescuable = 7 * time.Second

func runChild() {
	crashAt := os.Getenv("CHILD_CRASH_AT")
	stop := func(ctx context.Context, step, id string) {
		if step == crashAt && (step != "page" || id != "0") { // a sync stops at a page with alerts
			fmt.Printf("CRASH %s %s\n", step, id)
			select {} // wait for SIGKILL
		}
	}
	cfg := config.Config{
		DatabaseURL: os.Getenv("CHILD_DSN"), VaspID: et.OurVasp, APIKeys: []string{et.APIKey},
		Peers:     []config.Peer{{VaspID: et.TheirVasp, URL: "http://127.0.0.1:1", Secret: et.PeerSecret}},
		KYTAPIURL: os.Getenv("CHILD_KYT_URL"), KYTAPIKey: et.KYTKey, RiskAPIURL: os.Getenv("CHILD_KYT_URL") + "/api/risk", RiskAPIKey: et.KYTKey,
		CallbackURL: os.Getenv("CHILD_CALLBACK_URL"), CallbackToken: et.Token, CallbackSecret: et.CallbackSecret,
		KYTMaxAge: time.Hour, KYTPollMaxInterval: 100 * time.Millisecond, Workers: 10, PipelineConnections: 4,
		ChainalysisTimeout: 500 * time.Millisecond, // a run's timeout is 2 × 0.5 s + 5 s: see crashedJobsRescuable
		DataKeyset:         os.Getenv("CHILD_KEYSET"),
	}
	if os.Getenv("CHILD_MONITOR") != "" {
		cfg.KYTMonitorInterval = 200 * time.Millisecond
	}
	et.ServeChild(cfg, app.Tuning{
		KYT:              kytjob.Config{Hook: stop, Register: retry.Backoff{Base: 20 * time.Millisecond, Cap: 100 * time.Millisecond}, Poll: retry.Backoff{Base: 20 * time.Millisecond}},
		Screening:        screening.Config{Hook: stop, Retry: retry.Backoff{Base: 20 * time.Millisecond, Cap: 100 * time.Millisecond}, Poll: retry.Backoff{Base: 20 * time.Millisecond, Cap: 100 * time.Millisecond}},
		CallbackSchedule: []time.Duration{0, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond},
		AfterSend:        func(ctx context.Context, id string) { stop(ctx, "sent", id) },
		CallbackTimeout:  time.Second, // a delivery's timeout is 1 s + 5 s
		JobTimeout:       time.Second, RescueAfter: 2 * time.Second, PollEvery: 100 * time.Millisecond,
	})
}

// startChild starts a child enclave on dsn that stops itself at step crashAt.
func startChild(t *testing.T, dsn, kytURL, callbackURL, crashAt string, env ...string) *et.Child {
	t.Helper()
	return et.StartChild(t, append([]string{"CHILD_DSN=" + dsn, "CHILD_KYT_URL=" + kytURL,
		"CHILD_CALLBACK_URL=" + callbackURL, "CHILD_CRASH_AT=" + crashAt, "CHILD_KEYSET=" + et.Keyset(t)}, env...)...)
}

func TestCrashAtEveryStepLosesNothing(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"register", "registered", "summary", "processed", "sent"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			dsn := dbtest.URL(t)
			o := kytsim.Options{APIKey: et.KYTKey}
			if step == "registered" {
				// REGISTERED is recorded only for a transfer not processed in the run that
				// registered it.
				o.TransferDelay = 300 * time.Millisecond
				o.EntityPendingReads = 1 // and a screening whose first answer is a legacy PENDING
			}
			sim := kytsim.NewServer(o)
			defer sim.Close()
			rcv := et.NewReceiver(et.CallbackSecret)
			defer rcv.Close()

			first := startChild(t, dsn, sim.URL, rcv.URL(), step)
			c := &openapitest.Client{T: t, Base: "http://" + first.Addr, Bearer: et.APIKey}
			e := &et.Enclave{T: t, Client: c}
			// One withdrawal attempt and one sent transfer, both through the step.
			attempt := e.CreateOutgoing("BTC", "", "1", "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH")
			transfer := e.CreateOutgoing("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
			e.ReportTx(transfer, et.TxHash(uuid.NewString()))
			ids := []string{e.Assess(transfer, "")}
			if step != "summary" && step != "registered" { // attempts skip polling and REGISTERED
				ids = append(ids, e.Assess(attempt, ""))
			}
			// And an address screening of the beneficiary's wallet, through the same step.
			screened := e.Screen(transfer)
			// Its job stops at the step too (at "sent", every delivery does: the lines name callbacks).
			for seen := map[string]bool{}; !seen[screened] && (step != "sent" || len(seen) < len(ids)+1); {
				f := strings.Fields(first.Expect(t, "CRASH "+step))
				seen[f[len(f)-1]] = true
			}
			first.Kill()
			t.Logf("killed at %q", step)
			// The dead child was River's leader; its lease would lapse 15 s later. Lapse it now:
			// what is tested is how the pipeline resumes, not River's election. And let the job
			// it left running become rescuable before the next child starts: River's rescuer
			// looks once as it starts and then only every 30 s.
			et.ExpireLeadership(t, dsn)
			time.Sleep(crashedJobsRescuable)

			startChild(t, dsn, sim.URL, rcv.URL(), "")
			for _, id := range ids {
				k := rcv.Terminal(t, id, 90*time.Second).Data.RiskAssessment.ChainalysisKYT
				require.Equal(t, "PROCESSED", k.Status, "%s after a crash at %s", id, step)
				require.Equal(t, 1, *k.AlertCount)
			}
			a := rcv.ScreeningTerminal(t, screened, 90*time.Second).Screening.RiskAssessment.ChainalysisAddressScreening
			require.Equal(t, "PROCESSED", a.Status, "the screening after a crash at %s", step)
			require.Equal(t, "Severe", *a.Risk)
			if step == "sent" {
				// The receiver got the callback, the enclave died before recording it: it is
				// delivered again, with the same webhook-id.
				rcv.Wait(t, 90*time.Second, "a redelivery with the same webhook-id", func(got []et.Received) bool {
					seen := map[string]int{}
					for _, g := range got {
						if seen[g.ID]++; seen[g.ID] > 1 {
							return true
						}
					}
					return false
				})
			}
			db, err := sqlx.Open("postgres", dsn)
			require.NoError(t, err)
			defer db.Close()
			var open, terminalCallbacks int
			require.NoError(t, db.Get(&open, `SELECT (SELECT count(*) FROM kyt_results WHERE status NOT IN ('PROCESSED','ERROR'))
				+ (SELECT count(*) FROM screening_results WHERE status NOT IN ('PROCESSED','ERROR'))`))
			require.Zero(t, open, "no assessment or screening left behind")
			require.NoError(t, db.Get(&terminalCallbacks, `SELECT count(*) FROM callbacks WHERE terminal`))
			require.Equal(t, len(ids)+1, terminalCallbacks, "exactly one terminal callback per assessment and screening")
		})
	}
}

// TestCrashDuringSyncLosesNothing: the monitoring sync's process is killed between reading a
// page of new alerts and storing it; after a restart the new alert is stored once and called
// back once. (A sync dying inside an assessment's transaction, and one cut off after reading a
// page, are also tested in-process: TestInterruptedSyncsLoseAndDoubleNothing.)
func TestCrashDuringSyncLosesNothing(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"page"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			dsn := dbtest.URL(t)
			sim := kytsim.NewServer(kytsim.Options{APIKey: et.KYTKey})
			defer sim.Close()
			rcv := et.NewReceiver(et.CallbackSecret)
			defer rcv.Close()
			first := startChild(t, dsn, sim.URL, rcv.URL(), step, "CHILD_MONITOR=1")
			e := &et.Enclave{T: t, Client: &openapitest.Client{T: t, Base: "http://" + first.Addr, Bearer: et.APIKey}, Sim: sim}
			const addr = "0x00000000000000000000000000000000000000ee"
			v := e.CreateOutgoing("ETH", "", "1", addr)
			e.ReportTx(v, et.TxHash("crash-sync-"+step))
			id := e.Assess(v, "")
			require.Zero(t, *rcv.Terminal(t, id, 90*time.Second).Data.RiskAssessment.ChainalysisKYT.AlertCount)
			simPut(t, e, "/_sim/addresses/"+addr, `{"category":"sanctioned entity","cluster":"Designated Later"}`)
			first.Expect(t, "CRASH "+step)
			first.Kill()
			et.ExpireLeadership(t, dsn)
			time.Sleep(crashedJobsRescuable)

			startChild(t, dsn, sim.URL, rcv.URL(), "", "CHILD_MONITOR=1")
			got := rcv.Wait(t, 90*time.Second, "the CHAINALYSIS_KYT_ALERT", func(got []et.Received) bool {
				for _, g := range got {
					if g.Type == webhook.TypeKYTAlert {
						return true
					}
				}
				return false
			})
			time.Sleep(time.Second) // five more syncs
			alerts := 0
			for _, g := range rcv.All() {
				if g.Type == webhook.TypeKYTAlert {
					alerts++
					require.Len(t, g.Data.RiskAssessment.ChainalysisKYTAlerts, 1)
				}
			}
			require.Equal(t, 1, alerts, "one callback for the one new alert, across the crash (%d callbacks)", len(got))
			db, err := sqlx.Open("postgres", dsn)
			require.NoError(t, err)
			defer db.Close()
			var stored int
			require.NoError(t, db.Get(&stored, `SELECT count(*) FROM kyt_alerts WHERE source = 'MONITORING'`))
			require.Equal(t, 1, stored)
		})
	}
}

// TestPreferWaitAcrossProcesses: a request waiting in this process (an enclave that runs no
// workers) is answered inline when another OS process — a child enclave on the same database —
// works the job: its terminal transaction's notification crosses processes.
func TestPreferWaitAcrossProcesses(t *testing.T) {
	t.Parallel()
	front := et.Start(t, et.Options{APIOnly: true})
	startChild(t, front.DSN, front.Sim.URL, front.Receiver.URL(), "") // the worker process
	v := front.CreateOutgoing("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
	for _, route := range []string{"/v1/risk-assessment/chainalysis-kyt", "/v1/risk-assessment/chainalysis-address-screening"} {
		r := front.Client.Do("POST", route, []byte(`{"verificationUuid":"`+v+`"}`), http.Header{"Prefer": {"wait=20"}})
		require.Equal(t, 200, r.Status, "%s", r.Body)
		require.Equal(t, "wait=20", r.Header.Get("Preference-Applied"), "%s: %s", route, r.Body)
		require.Contains(t, string(r.Body), `"status":"PROCESSED"`)
	}
}
