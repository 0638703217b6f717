package exchange_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/dbtest"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/openapitest"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/webhook"
)

// crashedJobsRescuable is how long after a crash River may rescue the job the dead child left
// running: not before RescueAfter (2 s) nor before the job's own timeout (one peer request or
// VASP call of 1 s + 5 s), with 1 s to spare.
const crashedJobsRescuable = 7 * time.Second

// runChild runs one side of the exchange until it is killed, stopping itself at
// CHILD_CRASH_AT: "sent" (a counterparty acknowledged a message), "asked" (the VASP answered
// Verify User) or "delivered" (our VASP acknowledged a callback), each before it is recorded.
func runChild() {
	crashAt := os.Getenv("CHILD_CRASH_AT")
	var skip atomic.Int32 // the first CHILD_CRASH_SKIP times the step comes, it goes on
	if n, err := strconv.Atoi(os.Getenv("CHILD_CRASH_SKIP")); err == nil {
		skip.Store(int32(n))
	}
	stop := func(_ context.Context, step, id string) {
		if step == crashAt && skip.Add(-1) < 0 {
			fmt.Printf("CRASH %s %s\n", step, id)
			select {} // wait for SIGKILL
		}
	}
	cfg := config.Config{
		DatabaseURL: os.Getenv("CHILD_DSN"), VaspID: os.Getenv("CHILD_VASP"), APIKeys: []string{et.APIKey},
		Peers:       []config.Peer{{VaspID: os.Getenv("CHILD_PEER_ID"), URL: os.Getenv("CHILD_PEER_URL"), Secret: et.PeerSecret}},
		CallbackURL: os.Getenv("CHILD_CALLBACK_URL"), CallbackToken: et.Token, CallbackSecret: et.CallbackSecret,
		VerifyUserURL: os.Getenv("CHILD_VERIFY_USER_URL"), VASPAPITimeout: time.Second, VerificationTimeout: 2 * time.Minute,
		DataKeyset: os.Getenv("CHILD_KEYSET"), PipelineConnections: 4, KYTMaxAge: time.Hour,
	}
	if u := os.Getenv("CHILD_TRP_URL"); u != "" { // TRP: its listener behind the test's proxy at u
		cfg.TRPListenAddr, cfg.TRPURL, cfg.TRPInsecure = "127.0.0.1:0", u, true
		cfg.Peers[0].Protocol = config.ProtocolTRP
	}
	et.ServeChild(cfg, app.Tuning{
		Exchange:         exchange.Config{Hook: stop, PeerTimeout: time.Second, Retry: retry.Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond}},
		CallbackSchedule: []time.Duration{0, 50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond},
		AfterSend:        func(ctx context.Context, id string) { stop(ctx, "delivered", id) },
		CallbackTimeout:  time.Second,
		JobTimeout:       time.Second, RescueAfter: 2 * time.Second, PollEvery: 100 * time.Millisecond,
	})
}

// TestCrashAtEveryStepLosesNothing kills either enclave with SIGKILL at each step of the
// exchange, before the step is recorded, and restarts it: the verification still reaches one
// result with exactly one VERIFICATION_RESULT, and the tx report one TX_REPORT (delivered at
// least once: a redelivery has the same webhook-id).
func TestCrashAtEveryStepLosesNothing(t *testing.T) {
	et.Slow(t, "kills and restarts enclaves")
	t.Parallel()
	for _, c := range []struct {
		originatorCrashes bool
		step              string
		afterTx           bool // the step comes after the tx report
		skip              int  // it comes that many times before the one that crashes
	}{
		{true, "sent", false, 0},      // our verification acknowledged by the beneficiary
		{true, "delivered", false, 0}, // VERIFICATION_RESULT acknowledged by our VASP
		{false, "asked", false, 0},    // the beneficiary's VASP answered Verify User
		{false, "sent", false, 0},     // the result acknowledged by the originator
		{false, "delivered", true, 0}, // TX_REPORT acknowledged by the beneficiary's VASP
		{true, "sent", true, 1},       // the tx report acknowledged by the beneficiary
	} {
		name := map[bool]string{true: "originator", false: "beneficiary"}[c.originatorCrashes] + "-" + c.step
		if c.afterTx {
			name += "-after-tx"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			crashAt := c.step
			// The child and, through a proxy that follows its restarts, its counterparty here.
			proxy, childAddr := followingProxy(t)
			childID, parentID := et.TheirVasp, et.OurVasp
			if c.originatorCrashes {
				childID, parentID = et.OurVasp, et.TheirVasp
			}
			srv := httptest.NewUnstartedServer(nil)
			parent := et.Start(t, et.Options{Server: srv, VerifyUser: c.originatorCrashes, Config: func(cfg *config.Config) {
				cfg.VaspID = parentID
				cfg.Peers = []config.Peer{{VaspID: childID, URL: proxy.URL, Secret: et.PeerSecret}}
			}})
			parent.Receiver.VerifyUser(beneficiaryVASP)
			childRcv := et.NewReceiver(et.CallbackSecret)
			defer childRcv.Close()
			childRcv.VerifyUser(beneficiaryVASP)
			childDSN := dbtest.URL(t)
			env := []string{"CHILD_DSN=" + childDSN, "CHILD_VASP=" + childID, "CHILD_PEER_ID=" + parentID, "CHILD_PEER_URL=" + parent.URL,
				"CHILD_CALLBACK_URL=" + childRcv.URL(), "CHILD_KEYSET=" + et.Keyset(t)}
			if !c.originatorCrashes {
				env = append(env, "CHILD_VERIFY_USER_URL="+childRcv.VerifyUserURL())
			}
			child := et.StartChild(t, append(env, "CHILD_CRASH_AT="+crashAt, "CHILD_CRASH_SKIP="+strconv.Itoa(c.skip))...)
			childAddr.Store(child.Addr)

			originator, originatorRcv, beneficiaryRcv := parent.Client, parent.Receiver, childRcv
			if c.originatorCrashes {
				originator = &openapitest.Client{T: t, Base: "http://" + child.Addr, Bearer: et.APIKey}
				originatorRcv, beneficiaryRcv = childRcv, parent.Receiver
			}
			crash := func() {
				t.Helper()
				child.Expect(t, "CRASH "+crashAt)
				child.Kill()
				et.ExpireLeadership(t, childDSN)
				time.Sleep(crashedJobsRescuable)
				child = et.StartChild(t, env...)
				childAddr.Store(child.Addr)
				if c.originatorCrashes {
					originator.Base = "http://" + child.Addr
				}
			}

			id := exchangeThroughCrash(t, name, originator, originatorRcv, beneficiaryRcv, c.afterTx, crash, func(id string) string { return id })
			childDB, err := sqlx.Open("postgres", childDSN)
			require.NoError(t, err)
			defer childDB.Close()
			for _, db := range []*sqlx.DB{parent.DB, childDB} {
				var n int
				require.NoError(t, db.Get(&n, `SELECT count(*) FROM callbacks WHERE verification_uuid = $1
					AND callback_type IN ('VERIFICATION_RESULT', 'TX_REPORT')`, id))
				require.Equal(t, 1, n, "one callback record on each side")
				// A message acknowledged just before the crash is recorded once River rescues its job.
				require.Eventually(t, func() bool {
					return db.Get(&n, `SELECT count(*) FROM peer_messages WHERE status <> 'DELIVERED'`) == nil && n == 0
				}, 90*time.Second, 100*time.Millisecond, "every message delivered")
			}
		})
	}
}

// exchangeThroughCrash creates a verification at originator and reports its tx, calling crash
// (which kills and restarts one enclave) before the result or after the tx report: the
// originator's VASP still gets exactly one VERIFICATION_RESULT, VERIFIED, and the
// beneficiary's exactly one TX_REPORT with the hash (delivered at least once: a redelivery has
// the same webhook-id), for the beneficiary's verification inbound(id). It returns the id.
func exchangeThroughCrash(t *testing.T, name string, originator *openapitest.Client, originatorRcv, beneficiaryRcv *et.Receiver,
	afterTx bool, crash func(), inbound func(id string) string) string {
	t.Helper()
	r := originator.Do("POST", "/v1/verifications", body("1", beneficiaryAddr, beneficiaryName), nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	var created struct{ VerificationUUID string }
	require.NoError(t, json.Unmarshal(r.Body, &created))
	id := created.VerificationUUID
	if !afterTx {
		crash()
	}
	res := originatorRcv.WaitFor(t, webhook.TypeVerificationResult, id, 90*time.Second)
	require.Equal(t, "VERIFIED", res.Verification.Result)
	hash := et.TxHash(id)
	tx, _ := json.Marshal(map[string]any{"verificationUuid": id, "txHash": hash})
	if r := originator.Do("POST", "/v1/verifications/tx", tx, nil); r.Status != 200 {
		t.Fatalf("tx report: %d %s", r.Status, r.Body)
	}
	if afterTx {
		crash()
	}
	theirs := inbound(id)
	require.Equal(t, hash, beneficiaryRcv.WaitFor(t, webhook.TypeTxReport, theirs, 90*time.Second).TxReport.TxHash)
	// Exactly one of each, however often delivered.
	time.Sleep(300 * time.Millisecond) // a duplicate would have been sent by now
	for _, k := range []struct {
		rcv     *et.Receiver
		typ, id string
	}{{originatorRcv, webhook.TypeVerificationResult, id}, {beneficiaryRcv, webhook.TypeTxReport, theirs}} {
		ids := map[string]bool{}
		for _, g := range k.rcv.OfType(k.typ, k.id) {
			ids[g.ID] = true
		}
		require.Len(t, ids, 1, "one %s after a crash at %s", k.typ, name)
	}
	return id
}
